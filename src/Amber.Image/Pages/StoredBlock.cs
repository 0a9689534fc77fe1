using Amber.Image.Schema;
using Google.Protobuf;

namespace Amber.Image;

/// <summary>
/// Where <see cref="PageFileWriter.Store"/> put pages: the pages themselves at <see cref="Offset"/>,
/// or one block of <see cref="StoredLength"/> bytes there (compressed with <see cref="Codec"/>,
/// encrypted with <see cref="Nonce"/> and <see cref="Tag"/>, or both).
/// </summary>
public readonly record struct StoredBlock(ulong Offset, uint StoredLength, Codec Codec, ByteString Nonce, ByteString Tag)
{
    /// <summary>Whether the pages were stored as a block rather than as themselves.</summary>
    public bool IsBlock => Codec != Codec.None || !Nonce.IsEmpty;

    /// <summary>
    /// Points <paramref name="run"/> at its pages: those from page <paramref name="skip"/> of what
    /// was stored. Returns the run.
    /// </summary>
    public PageRun Describe(PageRun run, int skip)
    {
        ArgumentNullException.ThrowIfNull(run);
        if (!IsBlock)
        {
            run.FileOffset = Offset + (ulong)skip * ImageFormat.PageSize;
            return run;
        }
        run.FileOffset = Offset;
        run.Codec = Codec;
        run.StoredLength = StoredLength;
        run.Skip = (uint)skip;
        run.Nonce = Nonce;
        run.Tag = Tag;
        return run;
    }
}
