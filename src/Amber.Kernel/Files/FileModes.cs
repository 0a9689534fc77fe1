namespace Amber.Kernel.Files;

/// <summary>Permission bits that C writes in octal (C# has no octal literals).</summary>
public static class FileModes
{
    /// <summary>0666: read and write for everyone (less the umask, where a file is created with it).</summary>
    public const UnixFileMode ReadWriteAll = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead
        | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
}
