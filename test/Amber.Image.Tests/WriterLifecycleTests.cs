using Amber.Image.Schema;

namespace Amber.Image.Tests;

public sealed class WriterLifecycleTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void DisposeWithoutCommitLeavesNothing()
    {
        string target = _temp.Child("ckpt");
        using (CheckpointWriter writer = CheckpointWriter.Create(target))
        {
            writer.WriteMessage("a.img", ImageFileKind.Metadata, new Manifest());
            writer.CreatePageFile("pages.img").Append(new byte[2 * ImageFormat.PageSize]);
            Assert.True(Directory.Exists(writer.TemporaryDirectory));
        }

        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void DisposeTwiceAndAfterCommitIsHarmless()
    {
        string target = _temp.Child("ckpt");
        CheckpointWriter writer = CheckpointWriter.Create(target);
        writer.Commit(new Manifest());
        writer.Dispose();
        writer.Dispose();

        Assert.Equal([target], Directory.GetFileSystemEntries(_temp.Path));
        CheckpointReader.Open(target);
    }

    [Fact]
    public void CreateRefusesANonEmptyDirectory()
    {
        string target = _temp.Child("ckpt");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Join(target, "precious"), "keep");

        var ex = Assert.Throws<ImageStoreException>(() => CheckpointWriter.Create(target));

        Assert.Contains("not empty", ImageAssert.OneLine(ex));
        Assert.Equal("keep", File.ReadAllText(Path.Join(target, "precious")));
        Assert.Single(Directory.EnumerateFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void CreateRefusesAFileAndAMissingParent()
    {
        string file = _temp.Child("file");
        File.WriteAllText(file, "x");

        ImageAssert.OneLine(Assert.Throws<ImageStoreException>(() => CheckpointWriter.Create(file)));
        var ex = Assert.Throws<ImageStoreException>(() => CheckpointWriter.Create(_temp.Child("missing/ckpt")));
        Assert.Contains("does not exist", ImageAssert.OneLine(ex));
    }

    [Fact]
    public void CommitReplacesAnExistingEmptyDirectory()
    {
        string target = _temp.Child("ckpt");
        Directory.CreateDirectory(target);

        SampleCheckpoint.Write(target);

        CheckpointReader reader = CheckpointReader.Open(target);
        Assert.Equal(3, reader.Manifest.Files.Count);
        Assert.Equal([target], Directory.GetFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void CommitRefusesATargetThatFilledUpMeanwhile()
    {
        string target = _temp.Child("ckpt");
        using (CheckpointWriter writer = CheckpointWriter.Create(target))
        {
            writer.WriteMessage("a.img", ImageFileKind.Metadata, new Manifest());
            Directory.CreateDirectory(target);
            File.WriteAllText(Path.Join(target, "other"), "someone else");

            var ex = Assert.Throws<ImageStoreException>(() => writer.Commit(new Manifest()));

            Assert.Contains("no longer empty", ImageAssert.OneLine(ex));
            Assert.Throws<ImageStoreException>(() => writer.Commit(new Manifest()));
        }
        Assert.Equal([target], Directory.GetFileSystemEntries(_temp.Path));
        Assert.Equal(["other"], Directory.GetFileSystemEntries(target).Select(Path.GetFileName));
    }

    [Fact]
    public void InterruptedCheckpointIsNotACheckpoint()
    {
        string existing = _temp.Child("existing");
        string fresh = _temp.Child("fresh");
        Directory.CreateDirectory(existing);

        // Simulated crash: written, never committed nor disposed.
        CheckpointWriter crashedIntoExisting = CheckpointWriter.Create(existing);
        crashedIntoExisting.WriteMessage("a.img", ImageFileKind.Process, new ProcessImage());
        crashedIntoExisting.CreatePageFile("pages.img").Append(new byte[ImageFormat.PageSize]);
        CheckpointWriter crashedIntoFresh = CheckpointWriter.Create(fresh);
        crashedIntoFresh.WriteMessage("a.img", ImageFileKind.Process, new ProcessImage());

        string message = ImageAssert.OpenFails(existing);
        Assert.Equal($"no checkpoint at {existing} (no manifest.img; an interrupted checkpoint leaves only a *.tmp-* directory)", message);
        Assert.Equal($"{fresh} does not exist", ImageAssert.OpenFails(fresh));
        Assert.Contains("no checkpoint", ImageAssert.OpenFails(crashedIntoFresh.TemporaryDirectory));

        crashedIntoExisting.Dispose();
        crashedIntoFresh.Dispose();
    }

    [Fact]
    public void CommitFillsTheManifestAndEndsTheWriter()
    {
        string target = _temp.Child("ckpt");
        var manifest = new Manifest { FormatVersion = 99, RootPid = 7 };
        manifest.Files.Add(new ImageFileEntry { Name = "bogus" });
        using CheckpointWriter writer = CheckpointWriter.Create(target);
        PageFileWriter pages = writer.CreatePageFile("pages.img");
        writer.WriteMessage("a.img", ImageFileKind.Metadata, new ProcessImage());

        writer.Commit(manifest);

        Assert.Equal(ImageFormat.FormatVersion, manifest.FormatVersion);
        Assert.Equal(["a.img", "pages.img"], manifest.Files.Select(f => f.Name));
        Assert.Equal(manifest, CheckpointReader.Open(target).Manifest);
        Assert.Throws<InvalidOperationException>(() => writer.Commit(new Manifest()));
        Assert.Throws<InvalidOperationException>(() => writer.WriteMessage("b.img", ImageFileKind.Metadata, new Manifest()));
        Assert.Throws<InvalidOperationException>(() => pages.Append(new byte[ImageFormat.PageSize]));
    }

    [Fact]
    public void ArgumentsAreChecked()
    {
        using CheckpointWriter writer = CheckpointWriter.Create(_temp.Child("ckpt"));
        PageFileWriter pages = writer.CreatePageFile("pages.img");

        Assert.Throws<ArgumentException>(() => pages.Append(new byte[100]));
        Assert.Throws<ArgumentException>(() => pages.Append(new byte[ImageFormat.PageSize + 1]));
        Assert.Throws<ArgumentException>(() => writer.WriteMessage("p.img", ImageFileKind.Pages, new Manifest()));
        Assert.Throws<ArgumentException>(() => CheckpointWriter.Create(""));
        writer.Commit(new Manifest()); // bad arguments do not spoil the checkpoint
    }
}
