using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Amber.Image.Schema;

namespace Amber.Image.Tests;

/// <summary>
/// Checkpoints encrypted at rest (AES-256-GCM): what is written reads back with the key, nothing
/// of it is in clear in any file, and a missing key, another key or a changed byte is refused with
/// one line.
/// </summary>
public sealed class EncryptionTests : IDisposable
{
    private const string Marker = "AMBER-UNIT-SECRET-MARKER";
    private readonly TempDirectory _temp = new();
    private readonly ImageKey _key = ImageKey.FromBytes(Enumerable.Range(1, ImageKey.Length).Select(i => (byte)i).ToArray());

    public void Dispose() => _temp.Dispose();

    /// <summary>Pages full of the marker (three runs: one of a page, one of 1500 pages — more than a block holds — and one compressed), a process image holding it too.</summary>
    private (ProcessImage Process, byte[][] Pages) Write(string directory, ImageKey? key)
    {
        byte[] Filled(int pages, int seed)
        {
            var data = new byte[pages * ImageFormat.PageSize];
            byte[] text = Encoding.ASCII.GetBytes($"{Marker}-{seed}-");
            for (int at = 0; at + text.Length <= data.Length; at += text.Length)
                text.CopyTo(data, at);
            return data;
        }
        byte[][] pages = [Filled(1, 1), Filled(1500, 2), Filled(300, 3)];
        var process = new ProcessImage { Pid = 100, Ppid = 1, Comm = "sample", ExePath = "/usr/bin/sample", Cwd = $"/home/{Marker}", Mm = new MmImage { PageSize = ImageFormat.PageSize } };
        using var writer = CheckpointWriter.Create(directory, key);
        var file = writer.CreatePageFile("pages-100.img");
        ulong address = 0x7f00_0000_0000;
        for (int i = 0; i < pages.Length; i++)
        {
            file.StoreRuns(address, pages[i], PageHashes.Of(pages[i]), process.Mm.Pages, i == 2 ? Codec.Zstd : Codec.None);
            address += (ulong)pages[i].Length + (1 << 20);
        }
        writer.WriteMessage("process-100.img", ImageFileKind.Process, process);
        writer.Commit(new Manifest { AmberVersion = "test", RootPid = 100, Pids = { 100 } });
        return (process, pages);
    }

    private static byte[] ReadBack(CheckpointReader reader, IEnumerable<PageRun> runs)
    {
        using var pages = reader.OpenPageFile("pages-100.img");
        var all = new List<byte>();
        foreach (var run in runs)
        {
            var data = new byte[run.Count * ImageFormat.PageSize];
            pages.ReadRun(run, data);
            Assert.True(pages.VerifyRun(run));
            all.AddRange(data);
        }
        return [.. all];
    }

    [Fact]
    public void PagesAndMetadataReadBackIdenticalWithTheKey()
    {
        string dir = _temp.Child("ckpt");
        var (process, pages) = Write(dir, _key);
        var reader = CheckpointReader.Open(dir, key: _key);
        Assert.Equal(_key.Id, reader.Manifest.KeyId);
        Assert.Contains(ImageFormat.EncryptionFeature, reader.Manifest.RequiredFeatures);
        Assert.Equal(16, _key.Id.Length);
        var read = reader.ReadMessage("process-100.img", ImageFileKind.Process, ProcessImage.Parser);
        Assert.Equal(process, read);
        Assert.All(read.Mm.Pages, r => Assert.True(r.Encrypted && r.IsBlock && r.Count <= PageCodec.MaxPages));
        Assert.True(read.Mm.Pages.Select(r => r.Nonce).Distinct().Count() == read.Mm.Pages.Count, "a fresh nonce for every block");
        Assert.Equal(pages.SelectMany(p => p).ToArray(), ReadBack(reader, read.Mm.Pages));
    }

    [Fact]
    public void NoFileHoldsTheClearTextWhichAnUnencryptedCheckpointDoes()
    {
        byte[] marker = Encoding.ASCII.GetBytes(Marker);
        string clear = _temp.Child("clear"), encrypted = _temp.Child("encrypted");
        Write(clear, key: null);
        Write(encrypted, _key);
        // The test can fail: in clear, the pages and the process image hold the marker.
        Assert.True(File.ReadAllBytes(Path.Join(clear, "pages-100.img")).AsSpan().IndexOf(marker) >= 0);
        Assert.True(File.ReadAllBytes(Path.Join(clear, "process-100.img")).AsSpan().IndexOf(marker) >= 0);
        foreach (string path in Directory.GetFiles(encrypted))
            Assert.True(File.ReadAllBytes(path).AsSpan().IndexOf(marker) < 0, $"{path} holds the marker in clear");
        Assert.DoesNotContain(Convert.ToHexString(_key.Bytes), Convert.ToHexString(File.ReadAllBytes(Path.Join(encrypted, ImageFormat.ManifestFileName))));
    }

    [Fact]
    public void WithoutTheKeyOnlyTheManifestReads()
    {
        string dir = _temp.Child("ckpt");
        Write(dir, _key);
        var reader = CheckpointReader.Open(dir);
        Assert.True(reader.Encrypted);
        var refused = Assert.Throws<ImageKeyException>(() => reader.ReadMessage("process-100.img", ImageFileKind.Process, ProcessImage.Parser));
        Assert.Equal($"checkpoint {dir} is encrypted (key {_key.Id}): give --key KEYFILE", ImageAssert.OneLine(refused));
        Assert.Throws<ImageKeyException>(() => reader.OpenPageFile("pages-100.img"));
        // The files themselves say they are encrypted, to whoever reads them without the reader.
        var message = Assert.Throws<ImageFormatException>(() => MessageFile.Read(Path.Join(dir, "process-100.img"), ImageFileKind.Process, ProcessImage.Parser, ImageLimits.Default));
        Assert.Contains("is encrypted, and no key was given", message.Message);
    }

    [Fact]
    public void AnotherKeyIsRefusedNamingBoth()
    {
        string dir = _temp.Child("ckpt");
        Write(dir, _key);
        var other = ImageKey.FromBytes(new byte[ImageKey.Length]);
        var refused = Assert.Throws<ImageKeyException>(() => CheckpointReader.Open(dir, key: other));
        Assert.Equal($"checkpoint {dir} is encrypted with key {_key.Id}; --key names key {other.Id}", ImageAssert.OneLine(refused));
    }

    [Fact]
    public void AChangedByteOfAnEncryptedBlockFailsItsTag()
    {
        string dir = _temp.Child("ckpt");
        var (process, _) = Write(dir, _key);
        var run = process.Mm.Pages[1];
        ImageAssert.FlipBit(Path.Join(dir, "pages-100.img"), (long)run.FileOffset + 100, 3);
        // Opened without hashing page data (as a restore does): the tag finds it.
        var reader = CheckpointReader.Open(dir, verifyPageFiles: false, key: _key);
        using var pages = reader.OpenPageFile("pages-100.img");
        var data = new byte[run.Count * ImageFormat.PageSize];
        var damaged = Assert.Throws<ImageFormatException>(() => pages.ReadRun(run, data));
        Assert.Contains($"the encrypted block at offset {run.FileOffset} ({run.StoredLength} bytes) fails its authentication (AES-GCM tag)", ImageAssert.OneLine(damaged));
        Assert.False(pages.VerifyRun(run));
        Assert.DoesNotContain(data, b => b != 0);
    }

    [Fact]
    public void AChangedByteOfAnEncryptedMessageFailsItsTagEvenWithItsChecksumsMadeAgain()
    {
        string dir = _temp.Child("ckpt");
        Write(dir, _key);
        string path = Path.Join(dir, "process-100.img");
        byte[] file = File.ReadAllBytes(path);
        file[MessageFileHeader.Length + 20] ^= 0x10;
        // Every checksum made to match again (as anyone could): only the tag is left to find it.
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(24), XxHash3.HashToUInt64(file.AsSpan(MessageFileHeader.Length)));
        File.WriteAllBytes(path, file);
        ImageAssert.RewriteManifest(dir, m => m.Files.Single(f => f.Name == "process-100.img").Xxh3 = XxHash3.HashToUInt64(file));
        var reader = CheckpointReader.Open(dir, key: _key);
        var damaged = Assert.Throws<ImageFormatException>(() => reader.ReadMessage("process-100.img", ImageFileKind.Process, ProcessImage.Parser));
        Assert.Contains($"fails its authentication (AES-GCM tag): damaged, or not encrypted with key {_key.Id}", ImageAssert.OneLine(damaged));
    }

    [Fact]
    public void AnEncryptedPageFileTakesNoPagesInClear()
    {
        using var writer = CheckpointWriter.Create(_temp.Child("ckpt"), _key);
        var file = writer.CreatePageFile("pages-1.img");
        Assert.True(file.Encrypted);
        Assert.Throws<InvalidOperationException>(() => file.AppendData(new byte[ImageFormat.PageSize]));
        Assert.Throws<InvalidOperationException>(() => file.Append(new byte[ImageFormat.PageSize]));
    }

    [Fact]
    public void AKeyFileIsExactly32BytesOnlyItsOwnerMayRead()
    {
        string made = _temp.Child("made.key");
        var key = ImageKey.Create(made);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(made));
        Assert.Equal(ImageKey.Length, new FileInfo(made).Length);
        Assert.Equal(key.Id, ImageKey.Load(made).Id);
        Assert.Contains("exists already", Assert.Throws<ImageStoreException>(() => ImageKey.Create(made)).Message);

        string small = _temp.Child("small.key");
        File.WriteAllBytes(small, new byte[31]);
        File.SetUnixFileMode(small, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Contains("holds 31 bytes; a key is exactly 32 random bytes", ImageAssert.OneLine(Assert.Throws<ImageStoreException>(() => ImageKey.Load(small))));

        string open = _temp.Child("open.key");
        File.WriteAllBytes(open, new byte[ImageKey.Length]);
        File.SetUnixFileMode(open, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        Assert.Contains("may be read or written by others (mode 644): chmod 600 it", ImageAssert.OneLine(Assert.Throws<ImageStoreException>(() => ImageKey.Load(open))));

        Assert.Contains("does not exist", Assert.Throws<ImageStoreException>(() => ImageKey.Load(_temp.Child("none.key"))).Message);
    }
}
