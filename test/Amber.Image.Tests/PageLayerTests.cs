using Amber.Image.Schema;

namespace Amber.Image.Tests;

/// <summary>A page file of one checkpoint taken into another by a hard link, as a layer.</summary>
public sealed class PageLayerTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("pages-42.img", 0u, "pages-42.img")]
    [InlineData("pages-42.img", 1u, "pages-42.layer1.img")]
    [InlineData("storage-pages.img", 12u, "storage-pages.layer12.img")]
    public void LayerFileNamesKeepTheFileTheyExtend(string fileName, uint layer, string expected) =>
        Assert.Equal(expected, ImageFormat.LayerFileName(fileName, layer));

    [Fact]
    public void ALinkedPageFileIsTheSameFileAndReadsBackThroughItsLayer()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("base"));
        CheckpointReader from = CheckpointReader.Open(sample.Directory);
        string layerName = ImageFormat.LayerFileName(SampleCheckpoint.PageFile, 1);
        string merged = _temp.Child("merged");
        using (CheckpointWriter writer = CheckpointWriter.Create(merged))
        {
            Assert.True(writer.TryLinkPageFile(layerName, from, SampleCheckpoint.PageFile));
            writer.CreatePageFile(SampleCheckpoint.PageFile).AppendData(new byte[ImageFormat.PageSize]);
            writer.Commit(new Manifest { RequiredFeatures = { ImageFormat.PageLayersFeature } });
        }

        // The entry the manifest records is the source's.
        CheckpointReader reader = CheckpointReader.Open(merged); // page files hashed whole: the link checks out
        Assert.Equal(from.GetFileEntry(SampleCheckpoint.PageFile).Xxh3, reader.GetFileEntry(layerName).Xxh3);
        using PageFileReader layer = reader.OpenPageFile(SampleCheckpoint.PageFile, new PageFileRef(0, 1));
        foreach (PageRunData run in sample.Runs)
        {
            byte[] read = new byte[run.Data.Length];
            layer.ReadRun(run.Offset, read, run.PageXxh3);
            Assert.Equal(run.Data, read);
        }
        // A layer the manifest does not list is refused by name.
        var missing = Assert.Throws<ImageFormatException>(() => reader.OpenPageFile(SampleCheckpoint.PageFile, new PageFileRef(0, 2)));
        Assert.Contains("pages-100.layer2.img", missing.Message);

        // One file under two names: nothing was copied (a byte changed through one shows through the other).
        using (var layerFile = new FileStream(Path.Join(merged, layerName), FileMode.Open, FileAccess.ReadWrite))
        {
            layerFile.Position = ImageFormat.PageSize;
            layerFile.WriteByte((byte)~sample.Runs[0].Data[0]);
        }
        Assert.Equal((byte)~sample.Runs[0].Data[0], File.ReadAllBytes(sample.PathOf(SampleCheckpoint.PageFile))[ImageFormat.PageSize]);
    }

    [Fact]
    public void AManifestRequiringLayersIsRead()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        ImageAssert.RewriteManifest(sample.Directory, m => m.RequiredFeatures.Add(ImageFormat.PageLayersFeature));
        Assert.Contains(ImageFormat.PageLayersFeature, CheckpointReader.Open(sample.Directory).Manifest.RequiredFeatures);
    }
}
