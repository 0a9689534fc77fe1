using Amber.Image.Schema;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image.Tests;

/// <summary>Writes that fail (here: ENOSPC from /dev/full) surface as ImageStoreException and never commit.</summary>
public sealed class WriteFailureTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(ImageFormat.PageSize)] // gathered, fails when flushed by Commit
    [InlineData(1024 * 1024)] // written directly
    public void FullDiskDuringPageWritesNeverCommits(int appendLength)
    {
        string target = _temp.Child("ckpt");
        string pagesPath;
        using (CheckpointWriter writer = CreateWriterFailingOn(target, "pages.img"))
        {
            writer.WriteMessage("a.img", ImageFileKind.Metadata, new Manifest());
            PageFileWriter pages = writer.CreatePageFile("pages.img");
            pagesPath = pages.Path;
            ImageStoreException? appendError = Record.Exception(() => pages.Append(new byte[appendLength])) as ImageStoreException;

            var ex = Assert.Throws<ImageStoreException>(() => writer.Commit(new Manifest()));

            ImageStoreException error = appendError ?? ex;
            Assert.Equal($"cannot write {pagesPath}: No space left on device", ImageAssert.OneLine(error));
            Assert.False(Directory.Exists(target));
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void FullDiskDuringMessageWriteNeverCommits()
    {
        string target = _temp.Child("ckpt");
        using (CheckpointWriter writer = CreateWriterFailingOn(target, "a.img"))
        {
            var ex = Assert.Throws<ImageStoreException>(() => writer.WriteMessage("a.img", ImageFileKind.Process, new ProcessImage { Comm = "x" }));

            Assert.Contains("a.img: No space left on device", ImageAssert.OneLine(ex));
            Assert.Contains("earlier write failed", Assert.Throws<ImageStoreException>(() => writer.Commit(new Manifest())).Message);
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path));
    }

    [Fact]
    public void FullDiskForTheManifestNeverCommits()
    {
        string target = _temp.Child("ckpt");
        using (CheckpointWriter writer = CreateWriterFailingOn(target, ImageFormat.ManifestFileName))
        {
            writer.WriteMessage("a.img", ImageFileKind.Metadata, new Manifest());

            var ex = Assert.Throws<ImageStoreException>(() => writer.Commit(new Manifest { AmberVersion = "x" }));

            Assert.Contains("No space left on device", ImageAssert.OneLine(ex));
        }
        Assert.Empty(Directory.EnumerateFileSystemEntries(_temp.Path));
    }

    // The file is still created (so fsync by path works), but its writes go to /dev/full.
    private static CheckpointWriter CreateWriterFailingOn(string target, string failingName) =>
        CheckpointWriter.Create(target, path =>
        {
            SafeFileHandle created = ImageFiles.CreateNew(path);
            if (Path.GetFileName(path) != failingName)
            {
                return created;
            }
            created.Dispose();
            return File.OpenHandle("/dev/full", FileMode.Open, FileAccess.Write);
        });
}
