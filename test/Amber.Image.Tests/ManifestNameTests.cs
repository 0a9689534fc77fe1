using Amber.Image.Schema;

namespace Amber.Image.Tests;

/// <summary>A manifest can only name files inside the checkpoint directory, once each.</summary>
public sealed class ManifestNameTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string> UnsafeNames() =>
        ["../x", "a/b", "/etc/passwd", ".hidden", ".", "..", "", "x\ny", new string('a', 256), ImageFormat.ManifestFileName];

    [Theory]
    [MemberData(nameof(UnsafeNames))]
    public void UnsafeNameInManifestIsRefused(string name)
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        ImageAssert.RewriteManifest(sample.Directory, m => m.Files.Add(new ImageFileEntry { Name = name, Size = 1 }));

        Assert.StartsWith(sample.PathOf(ImageFormat.ManifestFileName), ImageAssert.OpenFails(sample.Directory));
    }

    [Theory]
    [MemberData(nameof(UnsafeNames))]
    public void UnsafeNameIsRefusedByTheWriter(string name)
    {
        using CheckpointWriter writer = CheckpointWriter.Create(_temp.Child("ckpt"));

        Assert.Throws<ArgumentException>(() => writer.WriteMessage(name, ImageFileKind.Metadata, new Manifest()));
        Assert.Throws<ArgumentException>(() => writer.CreatePageFile(name));
    }

    [Fact]
    public void DuplicateNamesAreRefused()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        ImageAssert.RewriteManifest(sample.Directory, m => m.Files.Add(m.Files[0].Clone()));

        Assert.Contains("twice", ImageAssert.OpenFails(sample.Directory));

        using CheckpointWriter writer = CheckpointWriter.Create(_temp.Child("other"));
        writer.WriteMessage("a.img", ImageFileKind.Metadata, new Manifest());
        Assert.Throws<ArgumentException>(() => writer.CreatePageFile("a.img"));
    }

    [Fact]
    public void MissingListedFileIsRefused()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        File.Delete(sample.PathOf(SampleCheckpoint.MetadataFile));

        Assert.Contains("is missing", ImageAssert.OpenFails(sample.Directory));
    }

    [Fact]
    public void ListedDirectoryIsRefused()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        File.Delete(sample.PathOf(SampleCheckpoint.MetadataFile));
        Directory.CreateDirectory(sample.PathOf(SampleCheckpoint.MetadataFile));

        Assert.Contains("is not a regular file", ImageAssert.OpenFails(sample.Directory));
    }

    [Fact]
    public void OnlyListedFilesCanBeRead()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        File.WriteAllText(sample.PathOf("stray.img"), "not listed");
        CheckpointReader reader = CheckpointReader.Open(sample.Directory);

        Assert.Equal(sample.PathOf(SampleCheckpoint.ProcessFile), reader.GetFilePath(SampleCheckpoint.ProcessFile));
        foreach (string name in new[] { "stray.img", "../ckpt/" + SampleCheckpoint.ProcessFile, ImageFormat.ManifestFileName })
        {
            ImageAssert.OneLine(Assert.Throws<ImageFormatException>(() => reader.GetFilePath(name)));
            Assert.Throws<ImageFormatException>(() => reader.ReadMessage(name, ImageFileKind.Process, ProcessImage.Parser));
            Assert.Throws<ImageFormatException>(() => reader.OpenPageFile(name));
        }
    }
}
