using System.Runtime.Versioning;
using Amber.Image.Schema;

namespace Amber.Image.Tests;

[SupportedOSPlatform("linux")]
public sealed class PermissionTests : IDisposable
{
    private const UnixFileMode FileMode0600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode DirectoryMode0700 = FileMode0600 | UnixFileMode.UserExecute;

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void CommittedFilesAre0600AndDirectoryIs0700()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));

        Assert.Equal(DirectoryMode0700, File.GetUnixFileMode(sample.Directory));
        foreach (string name in SampleCheckpoint.AllFiles)
        {
            Assert.Equal(FileMode0600, File.GetUnixFileMode(sample.PathOf(name)));
        }
    }

    [Fact]
    public void TemporaryFilesAre0600AndTemporaryDirectoryIs0700()
    {
        using CheckpointWriter writer = CheckpointWriter.Create(_temp.Child("ckpt"));
        writer.WriteMessage("a.img", ImageFileKind.Metadata, new Manifest());
        writer.CreatePageFile("pages.img").Append(new byte[ImageFormat.PageSize]);

        Assert.Equal(DirectoryMode0700, File.GetUnixFileMode(writer.TemporaryDirectory));
        Assert.Equal(FileMode0600, File.GetUnixFileMode(Path.Join(writer.TemporaryDirectory, "a.img")));
        Assert.Equal(FileMode0600, File.GetUnixFileMode(Path.Join(writer.TemporaryDirectory, "pages.img")));
        Assert.Equal(_temp.Path, Path.GetDirectoryName(writer.TemporaryDirectory));
        Assert.StartsWith("ckpt.tmp-", Path.GetFileName(writer.TemporaryDirectory));
    }
}
