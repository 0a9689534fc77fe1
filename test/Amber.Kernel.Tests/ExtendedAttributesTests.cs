using Amber.Kernel.Files;

namespace Amber.Kernel.Tests;

/// <summary>Amber's mark on a directory (a migration's shared-storage check): set, read back, taken off, never through a symlink.</summary>
public sealed class ExtendedAttributesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("amber-xattr-").FullName;

    [Fact]
    public void AnAttributeIsReadBackAsSetAndIsGoneOnceRemoved()
    {
        Assert.Null(ExtendedAttributes.Get(_dir, "user.amber.test"));
        ExtendedAttributes.Set(_dir, "user.amber.test", "token-1"u8);
        Assert.Equal("token-1"u8.ToArray(), ExtendedAttributes.Get(_dir, "user.amber.test"));
        ExtendedAttributes.Remove(_dir, "user.amber.test");
        Assert.Null(ExtendedAttributes.Get(_dir, "user.amber.test"));
        ExtendedAttributes.Remove(_dir, "user.amber.test"); // already gone: no error
    }

    [Fact]
    public void ASymlinkIsNotFollowed()
    {
        string link = Path.Combine(_dir, "link");
        string target = Directory.CreateDirectory(Path.Combine(_dir, "target")).FullName;
        File.CreateSymbolicLink(link, target);
        // User attributes cannot be on a symlink itself: the call fails rather than mark the directory it points to.
        var e = Assert.Throws<KernelCallException>(() => ExtendedAttributes.Set(link, "user.amber.test", "x"u8));
        Assert.Equal("lsetxattr", e.Call);
        Assert.Null(ExtendedAttributes.Get(target, "user.amber.test"));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
