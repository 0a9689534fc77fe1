using System.Buffers.Binary;
using Amber.Image.Schema;

namespace Amber.Image.Tests;

public sealed class ForeignFileTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string, string> ForeignManifests() => new()
    {
        { "random", "not an Amber image file" },
        { "empty", "is empty" },
        { "elf", "not an Amber image file (starts with 7F454C46)" },
        { "short-amber", "truncated" },
        { "process-image", "is a process image (PROC), expected a manifest (MNFT)" },
        { "page-file", "is a page file (PAGE), expected a manifest (MNFT)" },
        { "unknown-tag", "unknown type tag 'ABCD'" },
        { "future-version", $"format version {ImageFormat.FormatVersion + 1} is not supported (this build reads version {ImageFormat.FormatVersion})" },
        { "unknown-flags", "unknown header flags 0x00000001" },
        { "garbage-payload", "is not a valid Manifest" },
        { "manifest-version", "manifest format version 7 is not supported" },
        { "required-feature", "requires feature \"time-travel\"" },
    };

    /// <summary>
    /// Checksums anyone can compute again: a checkpoint edited by hand (or written elsewhere) is not
    /// signed with this host's key, and is refused unless the reader is told to trust it.
    /// </summary>
    [Fact]
    public void AManifestNotSignedByThisHostIsRefusedUnlessTrusted()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        Assert.True(CheckpointReader.Open(sample.Directory).Signed);
        ImageAssert.RewriteManifest(sample.Directory, m => m.RootPid += 1, sign: false);
        var refused = Assert.Throws<ImageFormatException>(() => CheckpointReader.Open(sample.Directory));
        Assert.Contains("was not written by this host", refused.Message);
        var trusted = CheckpointReader.Open(sample.Directory, trust: true);
        Assert.False(trusted.Signed);
        // Signed again by this host's key, it reads (the writer's own signature covers what it wrote).
        ImageAssert.RewriteManifest(sample.Directory, _ => { });
        Assert.True(CheckpointReader.Open(sample.Directory).Signed);
    }

    [Theory]
    [MemberData(nameof(ForeignManifests))]
    public void ForeignManifestIsRefused(string kind, string expected)
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string path = sample.PathOf(ImageFormat.ManifestFileName);
        byte[] manifest = File.ReadAllBytes(path);
        switch (kind)
        {
            case "random":
                File.WriteAllBytes(path, SampleCheckpoint.RandomBytes(new Random(3), 4000));
                break;
            case "empty":
                File.WriteAllBytes(path, []);
                break;
            case "elf":
                File.WriteAllBytes(path, [0x7F, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, 0, .. new byte[56]]);
                break;
            case "short-amber":
                File.WriteAllBytes(path, "AMBRMNFT"u8.ToArray());
                break;
            case "process-image":
                File.Copy(sample.PathOf(SampleCheckpoint.ProcessFile), path, overwrite: true);
                break;
            case "page-file":
                File.Copy(sample.PathOf(SampleCheckpoint.PageFile), path, overwrite: true);
                break;
            case "unknown-tag":
                "ABCD"u8.CopyTo(manifest.AsSpan(4));
                File.WriteAllBytes(path, manifest);
                break;
            case "future-version":
                BinaryPrimitives.WriteUInt32LittleEndian(manifest.AsSpan(8), ImageFormat.FormatVersion + 1);
                File.WriteAllBytes(path, manifest);
                break;
            case "unknown-flags":
                BinaryPrimitives.WriteUInt32LittleEndian(manifest.AsSpan(12), 1);
                File.WriteAllBytes(path, manifest);
                break;
            case "garbage-payload":
                File.Delete(path);
                WriteRawMessageFile(path, "MNFT"u8, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
                break;
            case "manifest-version":
                ImageAssert.RewriteManifest(sample.Directory, m => m.FormatVersion = 7);
                break;
            case "required-feature":
                ImageAssert.RewriteManifest(sample.Directory, m => m.RequiredFeatures.Add("time-travel"));
                break;
        }

        string message = ImageAssert.OpenFails(sample.Directory);

        Assert.Contains(expected, message);
        Assert.StartsWith(path, message);
    }

    [Fact]
    public void MessageOfTheWrongKindIsRefused()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        CheckpointReader reader = CheckpointReader.Open(sample.Directory);

        var ex = Assert.Throws<ImageFormatException>(() => reader.ReadMessage(SampleCheckpoint.ProcessFile, ImageFileKind.Metadata, ProcessImage.Parser));
        Assert.Contains("is a process image (PROC), expected a metadata file (META)", ImageAssert.OneLine(ex));
        ex = Assert.Throws<ImageFormatException>(() => reader.ReadMessage(SampleCheckpoint.PageFile, ImageFileKind.Process, ProcessImage.Parser));
        Assert.Contains("is a page file (PAGE)", ImageAssert.OneLine(ex));
        ex = Assert.Throws<ImageFormatException>(() => reader.OpenPageFile(SampleCheckpoint.ProcessFile));
        Assert.Contains("expected a page file (PAGE)", ImageAssert.OneLine(ex));
    }

    [Fact]
    public void ForeignListedFilesAreRefused()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string process = sample.PathOf(SampleCheckpoint.ProcessFile);
        byte[] original = File.ReadAllBytes(process);

        // Same size, so only the checksum can tell.
        File.WriteAllBytes(process, SampleCheckpoint.RandomBytes(new Random(5), original.Length));

        Assert.Contains("checksum mismatch", ImageAssert.OpenFails(sample.Directory));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(31)]
    public void ShortMessageFilesAreRefusedByTheHeaderAlone(int length)
    {
        string path = _temp.Child("short.img");
        ImageAssert.WriteMessageFile(path, ImageFileKind.Process, new ProcessImage { Pid = 1, Comm = "x" });
        ImageAssert.Truncate(path, length);

        var ex = Assert.Throws<ImageFormatException>(() => MessageFile.Read(path, ImageFileKind.Process, ProcessImage.Parser, ImageLimits.Default));

        Assert.Matches(length == 0 ? "is empty" : "truncated", ImageAssert.OneLine(ex));
    }

    [Fact]
    public void TruncatedPayloadIsRefusedByTheHeaderAlone()
    {
        string path = _temp.Child("short.img");
        ImageAssert.WriteMessageFile(path, ImageFileKind.Process, new ProcessImage { Pid = 1, Comm = "some process" });
        ImageAssert.Truncate(path, new FileInfo(path).Length - 1);

        var ex = Assert.Throws<ImageFormatException>(() => MessageFile.Read(path, ImageFileKind.Process, ProcessImage.Parser, ImageLimits.Default));

        Assert.Contains("truncated or has trailing bytes", ImageAssert.OneLine(ex));
    }

    internal static void WriteRawMessageFile(string path, ReadOnlySpan<byte> tag, byte[] payload, ulong? payloadLength = null)
    {
        byte[] file = new byte[32 + payload.Length];
        "AMBR"u8.CopyTo(file);
        tag.CopyTo(file.AsSpan(4));
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8), ImageFormat.FormatVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(16), payloadLength ?? (ulong)payload.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(file.AsSpan(24), System.IO.Hashing.XxHash3.HashToUInt64(payload));
        payload.CopyTo(file.AsSpan(32));
        File.WriteAllBytes(path, file);
    }
}
