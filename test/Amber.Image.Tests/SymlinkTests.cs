using Amber.Image.Schema;

namespace Amber.Image.Tests;

/// <summary>No file of a checkpoint is ever read through a symbolic link.</summary>
public sealed class SymlinkTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(ImageFormat.ManifestFileName)]
    [InlineData(SampleCheckpoint.ProcessFile)]
    [InlineData(SampleCheckpoint.PageFile)]
    public void ListedFileReplacedBySymlinkIsRefused(string file)
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string path = sample.PathOf(file);
        string elsewhere = _temp.Child("elsewhere");
        File.Move(path, elsewhere);
        File.CreateSymbolicLink(path, elsewhere); // identical content: only the link itself is wrong

        string message = ImageAssert.OpenFails(sample.Directory, verifyPageFiles: false);

        Assert.Contains("symbolic link", message);
        Assert.StartsWith(path, message);
    }

    [Fact]
    public void SymlinkSwappedInAfterOpenIsRefused()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        CheckpointReader reader = CheckpointReader.Open(sample.Directory);
        string path = sample.PathOf(SampleCheckpoint.ProcessFile);
        File.Move(path, _temp.Child("elsewhere"));
        File.CreateSymbolicLink(path, _temp.Child("elsewhere"));

        Assert.Throws<ImageFormatException>(() => reader.ReadMessage(SampleCheckpoint.ProcessFile, ImageFileKind.Process, ProcessImage.Parser));
    }
}
