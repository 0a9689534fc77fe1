namespace Amber.Integration.Tests.Infrastructure;

/// <summary>A small file system in a file, loop-mounted for one test (ext4 to fill it, btrfs for its reflinks).</summary>
public sealed class LoopFileSystem : IDisposable
{
    private readonly string _image;

    private LoopFileSystem(string image, string mountPoint)
    {
        _image = image;
        MountPoint = mountPoint;
    }

    public string MountPoint { get; }

    public static LoopFileSystem Mount(string image, string mountPoint, int megabytes, string type = "ext4")
    {
        using (var file = new FileStream(image, FileMode.CreateNew))
            file.SetLength(megabytes * 1048576L);
        ExternalProgram.Run($"/usr/sbin/mkfs.{type}", type == "ext4" ? "-F" : "-f", "-q", image).ShouldSucceed();
        Directory.CreateDirectory(mountPoint);
        ExternalProgram.Run("/usr/bin/mount", "-o", "loop", image, mountPoint).ShouldSucceed();
        return new LoopFileSystem(image, mountPoint);
    }

    public void Dispose()
    {
        // Lazily: a process a failed test left behind may still hold a file there.
        ExternalProgram.Run("/usr/bin/umount", "-l", MountPoint);
        File.Delete(_image);
    }
}
