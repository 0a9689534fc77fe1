namespace Amber.Coordinator.Security;

/// <summary>
/// Whether a user may write in directories, asked of the kernel itself: a helper process (amber
/// internal access) becomes that user (its uid and primary group, what the control socket's peer
/// credentials give; supplementary groups are not taken, so a directory writable only through one is
/// refused, on the safe side) and makes a directory or creates a file there. Checking owners and
/// modes along the path in the coordinator instead would miss ACLs, read-only mounts and security
/// modules, and answer as root does where it should answer as the user.
/// </summary>
public static class UserAccess
{
    /// <summary>
    /// In the coordinator: the helper's arguments, to ask whether the user may make <paramref name="create"/>
    /// (if given) and write in it and in every one of <paramref name="writable"/>. Its report says why not, if not.
    /// </summary>
    public static string[] Arguments(uint uid, uint gid, string? create, IEnumerable<string> writable)
    {
        var args = new List<string> { "access", "--uid", $"{uid}", "--gid", $"{gid}" };
        if (create is not null)
            args.AddRange(["--create", create]);
        foreach (string dir in writable)
            args.AddRange(["--write", dir]);
        return [.. args];
    }

    /// <summary>In the helper, once it is the user: makes <paramref name="create"/> if given and missing, then writes a file in each directory and removes it.</summary>
    public static string? CheckAsUser(uint uid, string? create, IReadOnlyList<string> writable)
    {
        try
        {
            if (create is not null)
                Directory.CreateDirectory(create);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"uid {uid} may not make {create}";
        }
        foreach (string dir in writable.Prepend(create).OfType<string>())
        {
            if (!Directory.Exists(dir))
                return $"{dir} is not a directory uid {uid} can reach";
            try
            {
                using var probe = new FileStream(Path.Combine(dir, $".amber-access-{Guid.NewGuid():N}"), new FileStreamOptions
                {
                    Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.DeleteOnClose, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return $"uid {uid} may not write in {dir}";
            }
        }
        return null;
    }
}
