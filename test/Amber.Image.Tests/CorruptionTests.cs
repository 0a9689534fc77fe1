namespace Amber.Image.Tests;

/// <summary>Every file of a checkpoint, truncated or with one bit flipped anywhere, is refused by Open.</summary>
public sealed class CorruptionTests : IDisposable
{
    private static readonly string[] MessageFiles = [ImageFormat.ManifestFileName, SampleCheckpoint.ProcessFile, SampleCheckpoint.MetadataFile];

    // Positions as labels so that they resolve against each file's real size.
    private static readonly string[] TruncationPoints = ["0", "1", "31", "32", "mid", "size-1"];
    private static readonly string[] HeaderAndPayloadBits = ["0", "3", "4", "8", "12", "16", "24", "31", "32", "mid", "size-1"];
    private static readonly string[] PageFileBits = ["0", "4", "8", "12", "16", "23", "24", "31", "32", "100", "4095", "4096", "mid", "size-1"];

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    public static TheoryData<string, string> Truncations() =>
        Cross(SampleCheckpoint.AllFiles, TruncationPoints.Concat(["4095", "4096", "4097"]).ToArray(), skipPageOnlyPointsForMessages: true);

    public static TheoryData<string, string> BitFlips()
    {
        TheoryData<string, string> data = Cross(MessageFiles, HeaderAndPayloadBits, skipPageOnlyPointsForMessages: false);
        foreach (string point in PageFileBits)
        {
            data.Add(SampleCheckpoint.PageFile, point);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Truncations))]
    public void TruncatedFileIsRefused(string file, string point)
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string path = sample.PathOf(file);

        ImageAssert.Truncate(path, Resolve(point, new FileInfo(path).Length));

        string message = ImageAssert.OpenFails(sample.Directory);
        Assert.Contains(path, message);
        ImageAssert.OpenFails(sample.Directory, verifyPageFiles: false);
    }

    [Theory]
    [MemberData(nameof(BitFlips))]
    public void FlippedBitIsRefused(string file, string point)
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string path = sample.PathOf(file);

        ImageAssert.FlipBit(path, Resolve(point, new FileInfo(path).Length), bit: 5);

        string message = ImageAssert.OpenFails(sample.Directory);
        Assert.Contains(path, message);
    }

    [Fact]
    public void AMetadataFileCheckedAsItIsReadIsRefusedThenEvenIfItsOwnChecksumsAgree()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string process = sample.PathOf(SampleCheckpoint.ProcessFile);
        // Another payload of the same size under a header made for it: only the signed manifest can tell.
        byte[] bytes = File.ReadAllBytes(process);
        bytes[^1] ^= 0x20;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(24), System.IO.Hashing.XxHash3.HashToUInt64(bytes.AsSpan(32)));
        File.WriteAllBytes(process, bytes);

        Assert.Contains("checksum mismatch", ImageAssert.OpenFails(sample.Directory, verifyPageFiles: false));
        CheckpointReader reader = CheckpointReader.Open(sample.Directory, verifyPageFiles: false, messagesCheckedOnRead: true);
        var ex = Assert.Throws<ImageFormatException>(() => reader.ReadMessage(SampleCheckpoint.ProcessFile, ImageFileKind.Process, Schema.ProcessImage.Parser));
        Assert.Contains($"{process}: checksum mismatch", ImageAssert.OneLine(ex));
        Assert.Contains("the manifest says", ex.Message);
        // The files it was not told of are read as they are.
        Assert.Equal(sample.Metadata, reader.ReadMessage(SampleCheckpoint.MetadataFile, ImageFileKind.Metadata, Schema.SignalAction.Parser));
    }

    [Fact]
    public void AMetadataFileCheckedAsItIsReadStillHasItsSizeCheckedWhenOpened()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string path = sample.PathOf(SampleCheckpoint.MetadataFile);
        ImageAssert.Truncate(path, new FileInfo(path).Length - 1);

        var ex = Assert.Throws<ImageFormatException>(() => CheckpointReader.Open(sample.Directory, verifyPageFiles: false, messagesCheckedOnRead: true));
        Assert.Contains(path, ImageAssert.OneLine(ex));
    }

    [Theory]
    [InlineData("4096")]
    [InlineData("mid")]
    [InlineData("size-1")]
    public void FlippedPageDataBitIsCaughtByVerificationOnly(string point)
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        string path = sample.PathOf(SampleCheckpoint.PageFile);
        long offset = Resolve(point, new FileInfo(path).Length);

        ImageAssert.FlipBit(path, offset);

        Assert.Contains("checksum mismatch", ImageAssert.OpenFails(sample.Directory));
        CheckpointReader reader = CheckpointReader.Open(sample.Directory, verifyPageFiles: false);
        using PageFileReader pages = reader.OpenPageFile(SampleCheckpoint.PageFile);
        foreach (PageRunData run in sample.Runs)
        {
            bool damaged = (ulong)offset >= run.Offset && (ulong)offset < run.Offset + (ulong)run.Data.Length;
            Assert.Equal(!damaged, pages.VerifyRun(run.Offset, run.PageXxh3));
            byte[] read = new byte[run.Data.Length];
            if (damaged)
            {
                ImageAssert.OneLine(Assert.Throws<ImageFormatException>(() => pages.ReadRun(run.Offset, read, run.PageXxh3)));
                // The page the bit is in, and only that page, fails its checksum.
                Assert.Equal((int)(((ulong)offset - run.Offset) / ImageFormat.PageSize), PageHashes.FirstMismatch(read, run.PageXxh3));
            }
            else
            {
                pages.ReadRun(run.Offset, read, run.PageXxh3);
            }
        }
    }

    [Fact]
    public void TrailingBytesAreRefused()
    {
        SampleCheckpoint sample = SampleCheckpoint.Write(_temp.Child("ckpt"));
        foreach (string file in SampleCheckpoint.AllFiles)
        {
            string path = sample.PathOf(file);
            byte[] original = File.ReadAllBytes(path);
            File.AppendAllText(path, "x");
            Assert.Contains(path, ImageAssert.OpenFails(sample.Directory));
            File.WriteAllBytes(path, original);
        }
        CheckpointReader.Open(sample.Directory);
    }

    private static long Resolve(string point, long size) => point switch
    {
        "mid" => size / 2 + 3,
        "size-1" => size - 1,
        _ => long.Parse(point),
    };

    private static TheoryData<string, string> Cross(string[] files, string[] points, bool skipPageOnlyPointsForMessages)
    {
        var data = new TheoryData<string, string>();
        foreach (string file in files)
        {
            foreach (string point in points)
            {
                bool pageOnly = point.StartsWith("409", StringComparison.Ordinal);
                if (!(skipPageOnlyPointsForMessages && pageOnly && file != SampleCheckpoint.PageFile))
                {
                    data.Add(file, point);
                }
            }
        }
        return data;
    }
}
