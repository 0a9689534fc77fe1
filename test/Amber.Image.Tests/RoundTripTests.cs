using System.IO.Hashing;
using Amber.Image.Schema;

namespace Amber.Image.Tests;

public sealed class RoundTripTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void MessagesAndPagesReadBackIdentical()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));

        CheckpointReader reader = CheckpointReader.Open(sample.Directory);

        Assert.Equal(sample.Directory, reader.Directory);
        Assert.Equal(sample.Manifest, reader.Manifest);
        Assert.Equal(sample.Process, reader.ReadMessage(SampleCheckpoint.ProcessFile, ImageFileKind.Process, ProcessImage.Parser));
        Assert.Equal(sample.Metadata, reader.ReadMessage(SampleCheckpoint.MetadataFile, ImageFileKind.Metadata, SignalAction.Parser));
        using PageFileReader pages = reader.OpenPageFile(SampleCheckpoint.PageFile);
        Assert.Equal((ulong)sample.Runs.Sum(r => r.Data.Length), pages.DataLength);
        foreach (PageRunData run in sample.Runs)
        {
            byte[] read = new byte[run.Data.Length];
            pages.Read(run.Offset, read);
            Assert.Equal(run.Data, read);
            Assert.True(pages.VerifyRun(run.Offset, run.PageXxh3));
            pages.ReadRun(run.Offset, read, run.PageXxh3);
        }
    }

    [Fact]
    public void AppendsAreContiguousPageAlignedAndChecksummed()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));

        ulong expectedOffset = ImageFormat.PageSize;
        foreach (PageRunData run in sample.Runs)
        {
            Assert.Equal(expectedOffset, run.Offset);
            Assert.Equal(0UL, run.Offset % ImageFormat.PageSize);
            Assert.Equal(Enumerable.Range(0, run.Data.Length / ImageFormat.PageSize)
                .Select(i => XxHash3.HashToUInt64(run.Data.AsSpan(i * ImageFormat.PageSize, ImageFormat.PageSize))), run.PageXxh3);
            expectedOffset += (ulong)run.Data.Length;
        }
        byte[] file = File.ReadAllBytes(sample.PathOf(SampleCheckpoint.PageFile));
        foreach (PageRunData run in sample.Runs)
        {
            Assert.True(file.AsSpan((int)run.Offset, run.Data.Length).SequenceEqual(run.Data));
        }
    }

    [Fact]
    public void ManifestListsEveryFileWithSizeAndChecksum()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));

        Manifest manifest = CheckpointReader.Open(sample.Directory).Manifest;

        Assert.Equal(ImageFormat.FormatVersion, manifest.FormatVersion);
        string[] onDisk = Directory.GetFiles(sample.Directory).Select(Path.GetFileName)
            .Where(n => n != ImageFormat.ManifestFileName).Order(StringComparer.Ordinal).ToArray()!;
        Assert.Equal(onDisk, manifest.Files.Select(f => f.Name).ToArray());
        foreach (ImageFileEntry entry in manifest.Files)
        {
            byte[] bytes = File.ReadAllBytes(sample.PathOf(entry.Name));
            Assert.Equal((ulong)bytes.Length, entry.Size);
            ulong expected = entry.Name == SampleCheckpoint.PageFile
                ? XxHash3.HashToUInt64(bytes.AsSpan(0, ImageFormat.PageSize), (long)XxHash3.HashToUInt64(bytes.AsSpan(ImageFormat.PageSize)))
                : XxHash3.HashToUInt64(bytes);
            Assert.Equal(expected, entry.Xxh3);
        }
    }

    [Fact]
    public void HeadersHaveTheDocumentedLayout()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));

        byte[] process = File.ReadAllBytes(sample.PathOf(SampleCheckpoint.ProcessFile));
        Assert.Equal("AMBRPROC"u8.ToArray(), process[..8]);
        Assert.Equal(ImageFormat.FormatVersion, BitConverter.ToUInt32(process, 8));
        Assert.Equal(0u, BitConverter.ToUInt32(process, 12));
        Assert.Equal((ulong)process.Length - 32, BitConverter.ToUInt64(process, 16));
        Assert.Equal(XxHash3.HashToUInt64(process.AsSpan(32)), BitConverter.ToUInt64(process, 24));
        Assert.Equal("AMBRMNFT"u8.ToArray(), File.ReadAllBytes(sample.PathOf(ImageFormat.ManifestFileName))[..8]);
        Assert.Equal("AMBRMETA"u8.ToArray(), File.ReadAllBytes(sample.PathOf(SampleCheckpoint.MetadataFile))[..8]);

        byte[] pages = File.ReadAllBytes(sample.PathOf(SampleCheckpoint.PageFile));
        Assert.Equal("AMBRPAGE"u8.ToArray(), pages[..8]);
        Assert.Equal(ImageFormat.FormatVersion, BitConverter.ToUInt32(pages, 8));
        Assert.Equal((ulong)pages.Length - 4096, BitConverter.ToUInt64(pages, 16));
        Assert.Equal(XxHash3.HashToUInt64(pages.AsSpan(0, 24)), BitConverter.ToUInt64(pages, 24));
        Assert.False(pages.AsSpan(32, 4096 - 32).ContainsAnyExcept((byte)0));
    }

    [Fact]
    public void ManyAppendsOfEverySizeReadBack()
    {
        var random = new Random(7);
        var runs = new List<(ulong Offset, byte[] Data)>();
        string directory = _temp.Child("ckpt");
        using (CheckpointWriter writer = CheckpointWriter.Create(directory))
        {
            PageFileWriter pages = writer.CreatePageFile("pages.img");
            foreach (int count in Enumerable.Range(0, 300).Select(i => i % 37 == 0 ? 300 + i : 1 + i % 5))
            {
                byte[] data = SampleCheckpoint.RandomBytes(random, count * ImageFormat.PageSize);
                runs.Add((pages.Append(data).Offset, data));
            }
            Assert.Equal((ulong)runs.Sum(r => r.Data.Length), pages.DataLength);
            writer.Commit(new Manifest());
        }

        using PageFileReader reader = CheckpointReader.Open(directory).OpenPageFile("pages.img");
        foreach ((ulong offset, byte[] data) in runs)
        {
            byte[] read = new byte[data.Length];
            reader.Read(offset, read);
            Assert.Equal(data, read);
        }
    }

    /// <summary>
    /// Page files written after memory was made ahead for them (Prefault: page cache given back, a
    /// buffer for small writes that the first takes) hold just their data, whether they wrote less or
    /// more than was made ahead; the checkpoint verifies (every page file hashed), and nothing else is
    /// left in it.
    /// </summary>
    [Theory]
    [InlineData(64, 3)]
    [InlineData(2, 400)]
    public void APageFileWrittenOverPageCacheMadeAheadHoldsJustItsData(int aheadPages, int runs)
    {
        var random = new Random(7);
        var written = new List<(ulong Offset, byte[] Data)>();
        string directory = _temp.Child("ckpt");
        using (CheckpointWriter writer = CheckpointWriter.Create(directory, directIo: false))
        {
            writer.Prefault(aheadPages * ImageFormat.PageSize);
            PageFileWriter pages = writer.CreatePageFile("pages.img");
            foreach (int count in Enumerable.Range(0, runs).Select(i => i % 50 == 49 ? 20 : 1))
            {
                byte[] data = SampleCheckpoint.RandomBytes(random, count * ImageFormat.PageSize);
                written.Add((pages.Append(data).Offset, data));
            }
            writer.CreatePageFile("other.img").Append(new byte[ImageFormat.PageSize]); // the buffer is taken once
            writer.Commit(new Manifest());
        }

        var reader = CheckpointReader.Open(directory, verifyPageFiles: true);
        Assert.Equal(["other.img", "pages.img"], reader.Manifest.Files.Select(f => f.Name).Order(StringComparer.Ordinal));
        Assert.Equal(["manifest.img", "other.img", "pages.img"], Directory.GetFiles(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        long dataLength = written.Sum(r => r.Data.LongLength);
        Assert.Equal(ImageFormat.PageSize + dataLength, new FileInfo(Path.Join(directory, "pages.img")).Length);
        using PageFileReader pagesRead = reader.OpenPageFile("pages.img");
        foreach ((ulong offset, byte[] expected) in written)
        {
            byte[] read = new byte[expected.Length];
            pagesRead.Read(offset, read);
            Assert.Equal(expected, read);
        }
    }

    /// <summary>Memory made ahead for page files leaves nothing in a checkpoint that has none.</summary>
    [Fact]
    public void PageCacheMadeAheadLeavesNothingInTheCheckpoint()
    {
        string directory = _temp.Child("ckpt");
        using (CheckpointWriter writer = CheckpointWriter.Create(directory, directIo: false))
        {
            writer.Prefault(1 << 20);
            Assert.Empty(Directory.GetFiles(writer.TemporaryDirectory));
            writer.WriteMessage("a.img", ImageFileKind.Metadata, new Manifest());
            writer.Commit(new Manifest());
        }

        Assert.Equal(["a.img", "manifest.img"], Directory.GetFiles(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        CheckpointReader.Open(directory, verifyPageFiles: true);
    }

    [Fact]
    public void EmptyPageFileAndZeroLengthAppendAreValid()
    {
        string directory = _temp.Child("ckpt");
        using (CheckpointWriter writer = CheckpointWriter.Create(directory))
        {
            PageFileWriter pages = writer.CreatePageFile("pages.img");
            var (offset, hashes) = pages.Append([]);
            Assert.Equal((ulong)ImageFormat.PageSize, offset);
            Assert.Empty(hashes);
            writer.Commit(new Manifest());
        }

        using PageFileReader reader = CheckpointReader.Open(directory).OpenPageFile("pages.img");
        Assert.Equal(0UL, reader.DataLength);
        Assert.Equal(ImageFormat.PageSize, new FileInfo(Path.Join(directory, "pages.img")).Length);
    }

    [Fact]
    public void ConcurrentWritersAreAllListed()
    {
        string directory = _temp.Child("ckpt");
        using (CheckpointWriter writer = CheckpointWriter.Create(directory))
        {
            Parallel.For(0, 64, i =>
            {
                writer.WriteMessage($"process-{i}.img", ImageFileKind.Process, new ProcessImage { Pid = i });
                PageFileWriter pages = writer.CreatePageFile($"pages-{i}.img");
                pages.Append(new byte[ImageFormat.PageSize * (1 + i % 3)]);
            });
            writer.Commit(new Manifest());
        }

        CheckpointReader reader = CheckpointReader.Open(directory);
        Assert.Equal(128, reader.Manifest.Files.Count);
        Assert.Equal(42, reader.ReadMessage("process-42.img", ImageFileKind.Process, ProcessImage.Parser).Pid);
    }
}
