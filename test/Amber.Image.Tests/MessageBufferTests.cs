using Amber.Image.Schema;

namespace Amber.Image.Tests;

/// <summary>Metadata files read into the buffer prepared ahead, or past it when they do not fit: the same messages either way.</summary>
public sealed class MessageBufferTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void MessagesReadIntoThePreparedBufferOrPastItAreTheOnesWritten()
    {
        MessageBuffer.Prepare(64 << 10);
        var small = new ProcessImage { Pid = 7, Comm = "small", Mm = new MmImage() };
        // Bigger than the buffer: ~200 KiB of page checksums.
        var big = new ProcessImage { Pid = 8, Comm = "big", Mm = new MmImage() };
        big.Mm.Pages.Add(new PageRun { Address = 0x1000, Count = 25_000, PageXxh3 = { Enumerable.Range(0, 25_000).Select(i => (ulong)i * 0x9e3779b97f4a7c15) } });
        string smallPath = _temp.Child("small.img"), bigPath = _temp.Child("big.img");
        ImageAssert.WriteMessageFile(smallPath, ImageFileKind.Process, small);
        ImageAssert.WriteMessageFile(bigPath, ImageFileKind.Process, big);

        // Read in turn, each time after the other: the buffer is given back and used again, and the
        // bytes of one never show in the other.
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(small, MessageFile.Read(smallPath, ImageFileKind.Process, ProcessImage.Parser, ImageLimits.Default));
            Assert.Equal(big, MessageFile.Read(bigPath, ImageFileKind.Process, ProcessImage.Parser, ImageLimits.Default));
        }
        // Read at once on several threads: whichever gets the buffer, each gets its own message.
        Parallel.For(0, 16, i =>
        {
            var (path, expected) = i % 2 == 0 ? (smallPath, small) : (bigPath, big);
            Assert.Equal(expected, MessageFile.Read(path, ImageFileKind.Process, ProcessImage.Parser, ImageLimits.Default));
        });
    }
}
