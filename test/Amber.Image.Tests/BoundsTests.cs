using System.Buffers.Binary;
using System.IO.Hashing;

namespace Amber.Image.Tests;

/// <summary>Crafted headers and manifests must be refused by ImageLimits before anything large is allocated.</summary>
public sealed class BoundsTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData(1UL << 62, "exceeds the limit")]
    [InlineData(200UL << 20, "truncated or has trailing bytes")] // within the limit, but not what the file holds
    public void HugeManifestPayloadLengthIsRefusedWithoutAllocating(ulong payloadLength, string expected)
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string path = sample.PathOf(ImageFormat.ManifestFileName);
        byte[] manifest = File.ReadAllBytes(path);
        BinaryPrimitives.WriteUInt64LittleEndian(manifest.AsSpan(16), payloadLength);
        File.WriteAllBytes(path, manifest);
        ImageAssert.OpenFails(sample.Directory); // warm up JIT and pools

        long before = GC.GetAllocatedBytesForCurrentThread();
        string message = ImageAssert.OpenFails(sample.Directory);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains($"{payloadLength}", message);
        Assert.Contains(expected, message);
        // Paths, the exception and its stack trace; nothing in proportion to the claimed length.
        Assert.True(allocated < 1024 * 1024, $"allocated {allocated} bytes");
    }

    [Fact]
    public void HugeListedMessageFileIsRefusedWithoutAllocating()
    {
        string path = _temp.Child("huge.img");
        ForeignFileTests.WriteRawMessageFile(path, "PROC"u8, [1, 2, 3], payloadLength: ulong.MaxValue);

        var ex = Assert.Throws<ImageFormatException>(() => MessageFile.Read(path, ImageFileKind.Process, Schema.ProcessImage.Parser, ImageLimits.Default));

        Assert.Contains("exceeds the limit", ImageAssert.OneLine(ex));
    }

    [Fact]
    public void HugePageDataLengthIsRefusedByLimits()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string path = sample.PathOf(SampleCheckpoint.PageFile);
        byte[] header = new byte[ImageFormat.PageSize];
        using (FileStream stream = File.Open(path, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.ReadExactly(header);
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(16), 1UL << 62);
            BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(24), XxHash3.HashToUInt64(header.AsSpan(0, 24)));
            stream.Position = 0;
            stream.Write(header);
        }

        Assert.Contains("exceeds the limit", ImageAssert.OpenFails(sample.Directory, verifyPageFiles: false));
    }

    [Fact]
    public void SmallLimitsAreEnforced()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));

        Assert.Contains("MaxFiles", ImageAssert.OpenFails(sample.Directory, new ImageLimits { MaxFiles = 2 }));
        Assert.Contains("MaxPageFileBytes", ImageAssert.OpenFails(sample.Directory, new ImageLimits { MaxPageFileBytes = 8192 }));
        Assert.Contains("MaxMetadataBytes", ImageAssert.OpenFails(sample.Directory, new ImageLimits { MaxMetadataBytes = 16 }));
        long process = new FileInfo(sample.PathOf(SampleCheckpoint.ProcessFile)).Length;
        string message = ImageAssert.OpenFails(sample.Directory, new ImageLimits { MaxMetadataBytes = (int)process - 40 });
        Assert.Contains(SampleCheckpoint.ProcessFile, message);
        CheckpointReader.Open(sample.Directory, new ImageLimits { MaxFiles = 3, MaxPageFileBytes = (long)sample.Runs.Sum(r => r.Data.Length) });
    }

    [Fact]
    public void LimitsAreValidated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageLimits { MaxMetadataBytes = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageLimits { MaxMetadataBytes = -1 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageLimits { MaxMetadataBytes = int.MaxValue });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageLimits { MaxFiles = 0 });
        Assert.Throws<ArgumentOutOfRangeException>(() => new ImageLimits { MaxPageFileBytes = -5 });
        Assert.Equal(256 << 20, ImageLimits.Default.MaxMetadataBytes);
        Assert.Equal(100_000, ImageLimits.Default.MaxFiles);
        Assert.Equal(1L << 40, ImageLimits.Default.MaxPageFileBytes);
    }

    [Fact]
    public void PageRangesOutsideTheDataAreRefused()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        using PageFileReader pages = CheckpointReader.Open(sample.Directory).OpenPageFile(SampleCheckpoint.PageFile);
        ulong end = ImageFormat.PageSize + pages.DataLength;
        byte[] page = new byte[ImageFormat.PageSize];

        Assert.Throws<ImageFormatException>(() => pages.Read(0, page));
        Assert.Throws<ImageFormatException>(() => pages.Read(end - 100, page));
        Assert.Throws<ImageFormatException>(() => pages.Read(ulong.MaxValue - 10, page));
        Assert.False(pages.VerifyRun(0, [0UL]));
        Assert.False(pages.VerifyRun(ImageFormat.PageSize, new ulong[(int)(pages.DataLength / ImageFormat.PageSize) + 1]));
        Assert.False(pages.VerifyRun(ulong.MaxValue, [0UL]));
        Assert.False(pages.VerifyRun(ImageFormat.PageSize, []));
        pages.Read(end - (ulong)page.Length, page);
        pages.Read(end, []);
    }
}
