using Amber.Image.Schema;

namespace Amber.Image.Tests;

/// <summary>Checkpoints through a stream (a migration's, or amber migrate --to-file): the same files on the other side, or nothing.</summary>
public sealed class CheckpointStreamTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private string Store(string name) => Directory.CreateDirectory(_temp.Child(name)).FullName;

    private static byte[] Stream(params string[] checkpoints)
    {
        using var output = new MemoryStream();
        var writer = CheckpointStreamWriter.Begin(output);
        foreach (string checkpoint in checkpoints)
            writer.Write(checkpoint);
        writer.End();
        Assert.Equal(output.Length, writer.BytesWritten);
        return output.ToArray();
    }

    [Fact]
    public void TwoCheckpointsArriveByteForByteAndTheEndIsSeen()
    {
        string from = Store("from");
        var first = SampleCheckpoint.Write(Path.Join(from, "ckpt-000001"), seed: 1);
        var second = SampleCheckpoint.Write(Path.Join(from, "ckpt-000002"), seed: 2);
        byte[] bytes = Stream(first.Directory, second.Directory);

        string to = Store("to");
        var reader = CheckpointStreamReader.Begin(new MemoryStream(bytes), to, sign: false);
        var one = reader.Next();
        var two = reader.Next();
        Assert.Null(reader.Next());
        Assert.Equal(bytes.Length, reader.BytesRead);
        Assert.Equal(["ckpt-000001", "ckpt-000002"], [one!.Name, two!.Name]);
        foreach (var (sent, received) in new[] { (first, one), (second, two) })
        {
            foreach (string file in SampleCheckpoint.AllFiles)
                Assert.Equal(File.ReadAllBytes(sent.PathOf(file)), File.ReadAllBytes(Path.Join(received.Directory, file)));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Join(received.Directory, SampleCheckpoint.PageFile)));
            var reader2 = CheckpointReader.Open(received.Directory, verifyPageFiles: true);
            Assert.Equal(sent.Process, reader2.ReadMessage(SampleCheckpoint.ProcessFile, ImageFileKind.Process, ProcessImage.Parser));
        }
        Assert.Equal(["ckpt-000001", "ckpt-000002"], Directory.GetDirectories(to).Select(Path.GetFileName).Order());
    }

    /// <summary>
    /// A hand-over's checkpoint: sealed, it is whole in its temporary directory and is sent from there
    /// under its own name while it is made durable, then committed; nothing more goes into it once
    /// sealed. The receiving end commits it from the page cache and makes it durable afterwards.
    /// </summary>
    [Fact]
    public async Task ASealedCheckpointIsSentUnderItsNameBeforeItIsCommittedAndReceivedWithoutWaitingForTheDisk()
    {
        string from = Store("from");
        string target = Path.Join(from, "ckpt-000007");
        using var writer = CheckpointWriter.Create(target, directIo: false);
        byte[] data = SampleCheckpoint.RandomBytes(new Random(7), 3 * ImageFormat.PageSize);
        var (offset, hashes) = writer.CreatePageFile("pages-1.img").Append(data);
        var process = new ProcessImage { Pid = 1, PageFile = "pages-1.img", Mm = new MmImage { PageSize = ImageFormat.PageSize } };
        process.Mm.Pages.Add(new PageRun { Address = 0x10000, Count = 3, FileOffset = offset, PageXxh3 = { hashes } });
        writer.WriteMessage("process-1.img", ImageFileKind.Process, process);
        writer.Seal(new Manifest { AmberVersion = "test", RootPid = 1, Pids = { 1 }, CreatedUnixMs = 1 });
        Assert.Throws<InvalidOperationException>(() => writer.WriteMessage("late.img", ImageFileKind.Metadata, new Manifest()));
        Assert.False(Directory.Exists(target));

        var durable = Task.Run(writer.MakeDurable, TestContext.Current.CancellationToken);
        using var output = new MemoryStream();
        var stream = CheckpointStreamWriter.Begin(output);
        stream.Write(writer.TemporaryDirectory, name: "ckpt-000007");
        stream.End();
        await durable;
        writer.Commit();
        Assert.Equal([target], Directory.GetDirectories(from));

        string to = Store("to");
        var reader = CheckpointStreamReader.Begin(new MemoryStream(output.ToArray()), to, sign: false, durable: false);
        var received = reader.Next()!;
        Assert.Null(reader.Next());
        Assert.Equal("ckpt-000007", received.Name);
        CheckpointStore.MakeDurable(received.Directory);
        var opened = CheckpointReader.Open(received.Directory, verifyPageFiles: true);
        Assert.Equal(process, opened.ReadMessage("process-1.img", ImageFileKind.Process, ProcessImage.Parser));
        Assert.Equal(File.ReadAllBytes(Path.Join(target, "pages-1.img")), File.ReadAllBytes(Path.Join(received.Directory, "pages-1.img")));
    }

    [Fact]
    public void ACheckpointSentWithItsPagesLaterHasItsPageHeadersAndHolesUntilTheyAreFilledAndChecked()
    {
        string from = Store("from");
        var sample = SampleCheckpoint.Write(Path.Join(from, "ckpt-000001"), seed: 3);
        using var output = new MemoryStream();
        var writer = CheckpointStreamWriter.Begin(output);
        writer.Write(sample.Directory, pagesLater: true);
        writer.End();
        string sentPages = sample.PathOf(SampleCheckpoint.PageFile);
        long size = new FileInfo(sentPages).Length;
        Assert.Equal([(Path.GetFullPath(sentPages), size)], writer.PagesLater.Select(f => (Path.GetFullPath(f.Path), f.Size)));
        Assert.True(output.Length < size, $"the page data went with it: {output.Length} bytes sent for a page file of {size}");

        var received = CheckpointStreamReader.Begin(new MemoryStream(output.ToArray()), Store("to"), sign: false).Next()!;
        var incoming = Assert.Single(received.PagesToCome);
        Assert.Equal(Path.Join(received.Directory, SampleCheckpoint.PageFile), incoming.Path);
        foreach (string file in SampleCheckpoint.AllFiles.Where(f => f != SampleCheckpoint.PageFile))
            Assert.Equal(File.ReadAllBytes(sample.PathOf(file)), File.ReadAllBytes(Path.Join(received.Directory, file)));
        byte[] sent = File.ReadAllBytes(sentPages), here = File.ReadAllBytes(incoming.Path);
        Assert.Equal(sent.Length, here.Length);
        Assert.Equal(sent[..ImageFormat.PageSize], here[..ImageFormat.PageSize]);
        Assert.All(here[ImageFormat.PageSize..], b => Assert.Equal(0, b));
        // Its data not in yet: it is not what the manifest says.
        Assert.Contains("checksum mismatch", Assert.Throws<ImageFormatException>(incoming.Complete).Message);

        using (var file = File.OpenHandle(incoming.Path, FileMode.Open, FileAccess.Write))
            RandomAccess.Write(file, sent.AsSpan(ImageFormat.PageSize), ImageFormat.PageSize);
        incoming.Complete();
        CheckpointReader.Open(received.Directory, verifyPageFiles: true);
    }

    [Fact]
    public void ByteRangesMergeAndTellTheirGaps()
    {
        var ranges = new ByteRanges();
        ranges.Add(100, 200);
        ranges.Add(300, 400);
        ranges.Add(200, 250); // touches the first: one range
        Assert.Equal(250UL, ranges.Total);
        Assert.True(ranges.Covers(100, 250));
        Assert.False(ranges.Covers(100, 251));
        Assert.False(ranges.Covers(99, 120));
        Assert.True(ranges.Covers(120, 120)); // nothing
        Assert.True(ranges.FirstGap(0, 500, out ulong start, out ulong end));
        Assert.Equal((0UL, 100UL), (start, end));
        Assert.True(ranges.FirstGap(150, 500, out start, out end));
        Assert.Equal((250UL, 300UL), (start, end));
        Assert.True(ranges.FirstGap(320, 500, out start, out end));
        Assert.Equal((400UL, 500UL), (start, end));
        Assert.False(ranges.FirstGap(310, 390, out _, out _));
        ranges.Add(50, 450); // over both and the gap between
        Assert.Equal(400UL, ranges.Total);
        Assert.True(ranges.Covers(50, 450));
        Assert.False(ranges.FirstGap(50, 450, out _, out _));
    }

    [Fact]
    public void SigningOnReceiptMakesACheckpointOfAnotherHostThisHostsAndWithoutItOnlyTrustOpensIt()
    {
        string from = Store("from");
        var sample = SampleCheckpoint.Write(Path.Join(from, "ckpt-000001"));
        // Another host's: its signature is not this host's key's.
        var manifestPath = sample.PathOf(ImageFormat.ManifestFileName);
        var manifest = CheckpointReader.Open(sample.Directory).Manifest.Clone();
        manifest.HostMac = Google.Protobuf.ByteString.CopyFrom(new byte[32]);
        File.Delete(manifestPath);
        using (var handle = ImageFiles.CreateNew(manifestPath))
            MessageFile.Write(handle, manifestPath, ImageFileKind.Manifest, manifest);
        byte[] bytes = Stream(sample.Directory);

        var kept = CheckpointStreamReader.Begin(new MemoryStream(bytes), Store("kept"), sign: false).Next()!;
        Assert.Throws<ImageFormatException>(() => CheckpointReader.Open(kept.Directory));
        Assert.NotNull(CheckpointReader.Open(kept.Directory, trust: true));
        var signed = CheckpointStreamReader.Begin(new MemoryStream(bytes), Store("signed"), sign: true).Next()!;
        Assert.True(CheckpointReader.Open(signed.Directory).Signed);
    }

    /// <summary>Cut in the last chunk of the second checkpoint's page file (3 MiB: 4 chunks), or in its second, while the first is being written.</summary>
    [Theory]
    [InlineData(5000)]
    [InlineData(2 << 20)]
    public void ACutOffStreamLeavesOnlyWhatWasWholeAndSaysWhere(int cut)
    {
        string from = Store("from");
        var first = SampleCheckpoint.Write(Path.Join(from, "ckpt-000001"), seed: 1);
        SampleCheckpoint.Write(Path.Join(from, "ckpt-000002"), seed: 2);
        byte[] bytes = Stream(first.Directory, Path.Join(from, "ckpt-000002"));
        string to = Store("to");
        var reader = CheckpointStreamReader.Begin(new MemoryStream(bytes[..(bytes.Length - cut)]), to, sign: false);
        Assert.NotNull(reader.Next());
        var e = Assert.Throws<ImageFormatException>(() => reader.Next());
        Assert.Contains("cut off", e.Message, StringComparison.Ordinal);
        Assert.Contains("ckpt-000002", e.Message, StringComparison.Ordinal);
        Assert.Equal(["ckpt-000001"], Directory.GetFileSystemEntries(to).Select(Path.GetFileName));
    }

    [Fact]
    public void ADamagedPageIsRefusedAndNothingOfItsCheckpointStays()
    {
        string from = Store("from");
        var sample = SampleCheckpoint.Write(Path.Join(from, "ckpt-000001"));
        byte[] bytes = Stream(sample.Directory);
        // A byte in the middle of the page file (the last and largest file), flipped on the way.
        bytes[bytes.Length - 200_000] ^= 0x40;
        string to = Store("to");
        var e = Assert.Throws<ImageFormatException>(() => CheckpointStreamReader.Begin(new MemoryStream(bytes), to, sign: false).Next());
        Assert.Contains("checksum", e.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(to));
    }

    [Theory]
    [InlineData("../outside")]
    [InlineData("ckpt-000001.tmp-abc")]
    [InlineData("")]
    public void ACheckpointNamedOutsideTheStoreOrAsOneBeingWrittenIsRefused(string name)
    {
        string from = Store("from");
        var sample = SampleCheckpoint.Write(Path.Join(from, "ckpt-000001"));
        byte[] bytes = Stream(sample.Directory);
        // Header (12), mark (1), name length (2), manifest length (4), then the name.
        byte[] renamed = [.. bytes[..13], .. BitConverter.GetBytes((ushort)name.Length), .. bytes[15..19], .. System.Text.Encoding.UTF8.GetBytes(name), .. bytes[(19 + "ckpt-000001".Length)..]];
        string to = Store("to");
        Assert.Throws<ImageFormatException>(() => CheckpointStreamReader.Begin(new MemoryStream(renamed), to, sign: false).Next());
        Assert.Empty(Directory.GetFileSystemEntries(to));
        Assert.False(Directory.Exists(_temp.Child("outside")));
    }

    [Fact]
    public void SomethingElseIsNotTakenForAStreamAndAnExistingCheckpointIsNotOverwritten()
    {
        Assert.Throws<ImageFormatException>(() => CheckpointStreamReader.Begin(new MemoryStream("GET / HTTP/1.1\r\n"u8.ToArray()), Store("x"), sign: false));
        string from = Store("from");
        var sample = SampleCheckpoint.Write(Path.Join(from, "ckpt-000001"));
        byte[] bytes = Stream(sample.Directory);
        string to = Store("to");
        CheckpointStreamReader.Begin(new MemoryStream(bytes), to, sign: false).Next();
        Assert.Throws<ImageStoreException>(() => CheckpointStreamReader.Begin(new MemoryStream(bytes), to, sign: false).Next());
    }
}
