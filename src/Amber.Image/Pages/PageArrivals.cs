namespace Amber.Image;

/// <summary>
/// Page files that are still arriving (a post-copy migration: the checkpoint is here, its page data
/// comes from the other node while the restored group runs): a read of such a file waits until the
/// bytes it reads are in, asking for them first.
/// </summary>
public interface IPageArrivals
{
    /// <summary>
    /// Returns once bytes [offset, offset + length) of the file at <paramref name="path"/> are in it
    /// (at once for a file that is not arriving).
    /// </summary>
    /// <exception cref="ImageFormatException">They will never arrive (the link to the other node failed): the message says why.</exception>
    void Await(string path, ulong offset, ulong length);

    /// <summary>
    /// Asks for the byte ranges of the file at <paramref name="path"/> that will be read soon, without
    /// waiting for them: they come in one go, and each <see cref="Await"/> of them then waits for its
    /// own bytes only, not for a question and an answer each.
    /// </summary>
    void Prefetch(string path, IReadOnlyList<(ulong Offset, ulong Length)> ranges);
}

/// <summary>
/// The page files this process reads that are still arriving, for every <see cref="PageFileReader"/>
/// it opens. Process-wide on purpose: a restore worker restoring a group whose pages are on their way
/// reads them through many readers, opened in many places, and each must wait for its bytes.
/// </summary>
public static class PageArrivals
{
    /// <summary>What page files opened from now on wait for; null: every file is whole.</summary>
    public static IPageArrivals? Current { get; private set; }

    /// <summary>From now on, reads of page files wait for <paramref name="arrivals"/>.</summary>
    public static void Install(IPageArrivals arrivals) => Current = arrivals;
}
