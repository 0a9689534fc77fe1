using Amber.Image;
using Amber.Transport.Peers;
using Microsoft.Win32.SafeHandles;

namespace Amber.Transport.Migration;

/// <summary>
/// The destination's side of a post-copy migration's pages: the page files of the received
/// checkpoints, which have their headers and holes, are filled from the page link as their data
/// arrives. A read that needs bytes not in yet (<see cref="Await"/>, for the restore worker) asks the
/// source for them and waits. Once every file is whole it is checked against its checksum and made
/// durable, the source is told, and <see cref="Completion"/> ends: the checkpoints are this node's.
/// If the link fails first, every wait fails, and the group (whose memory cannot be completed) with it.
/// </summary>
internal sealed class PageReceiver : IPageArrivals, IDisposable
{
    private readonly PeerLink _link;
    private readonly List<IncomingPageFile> _files;
    private readonly SafeFileHandle[] _handles;
    private readonly Dictionary<string, int> _byPath = new(StringComparer.Ordinal);
    private readonly ByteRanges[] _arrived;
    private readonly ByteRanges[] _asked;
    private readonly object _lock = new(); // waited on (Monitor): the arrivals
    private readonly Lock _writeLock = new();
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _failure;
    private long _bytes;

    /// <param name="link">The page link the source opened, its hello and request exchanged.</param>
    /// <param name="files">The page files still to fill, in the stream's order.</param>
    public PageReceiver(PeerLink link, IReadOnlyList<IncomingPageFile> files)
    {
        _link = link;
        _files = [.. files];
        _handles = new SafeFileHandle[_files.Count];
        _arrived = new ByteRanges[_files.Count];
        _asked = new ByteRanges[_files.Count];
        try
        {
            for (int i = 0; i < _files.Count; i++)
            {
                _handles[i] = File.OpenHandle(_files[i].Path, FileMode.Open, FileAccess.ReadWrite);
                _byPath[Path.GetFullPath(_files[i].Path)] = i;
                _arrived[i] = new ByteRanges();
                _arrived[i].Add(0, ImageFormat.PageSize); // a page file's header (its first page) came with the checkpoint
                _asked[i] = new ByteRanges();
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Every file in and checked, the source told; or the failure (an IOException or ImageFormatException).</summary>
    public Task Completion => _done.Task;

    /// <summary>Bytes of page data received so far.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Starts taking the source's frames on a thread of its own.</summary>
    public void Start() => new Thread(Receive) { IsBackground = true, Name = "amber-page-receiver" }.Start();

    /// <inheritdoc/>
    public void Await(string path, ulong offset, ulong length)
    {
        if (!_byPath.TryGetValue(Path.GetFullPath(path), out int file))
            return; // whole already
        ulong end = Math.Min(offset + length, (ulong)_files[file].Entry.Size);
        lock (_lock)
        {
            while (true)
            {
                if (_arrived[file].Covers(offset, end))
                    return;
                if (_failure is { } failure)
                    throw new ImageFormatException($"{path}: the page data from node {_link.Peer} stopped: {failure}");
                AskForMissing(file, offset, end);
                Monitor.Wait(_lock);
            }
        }
    }

    /// <inheritdoc/>
    public void Prefetch(string path, IReadOnlyList<(ulong Offset, ulong Length)> ranges)
    {
        if (!_byPath.TryGetValue(Path.GetFullPath(path), out int file))
            return; // whole already
        lock (_lock)
        {
            foreach (var (offset, length) in ranges)
                AskForMissing(file, offset, Math.Min(offset + length, (ulong)_files[file].Entry.Size));
        }
    }

    /// <summary>Asks the source for what of [start, end) of a file has neither arrived nor been asked for (under the lock).</summary>
    private void AskForMissing(int file, ulong start, ulong end)
    {
        for (ulong at = start; _arrived[file].FirstGap(at, end, out ulong gap, out ulong gapEnd); at = gapEnd)
        {
            for (ulong from = gap; _asked[file].FirstGap(from, gapEnd, out ulong ask, out ulong askEnd); from = askEnd)
            {
                Ask(file, ask, askEnd);
                _asked[file].Add(ask, askEnd);
            }
        }
    }

    private void Ask(int file, ulong start, ulong end)
    {
        Span<byte> head = stackalloc byte[PageFrames.HeadBytes];
        for (ulong at = start; at < end; at += PageFrames.MaxData)
        {
            PageFrames.WriteHead(head, PageFrames.Need, file, at, (int)Math.Min(end - at, (ulong)PageFrames.MaxData));
            try
            {
                lock (_writeLock)
                {
                    _link.Stream.Write(head);
                    _link.Stream.Flush();
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                Fail(e is IOException ? e.Message : "the page link was closed");
            }
        }
    }

    private void Receive()
    {
        byte[] data = new byte[PageFrames.MaxData];
        Span<byte> head = stackalloc byte[PageFrames.HeadBytes];
        try
        {
            int whole = 0;
            var complete = new bool[_files.Count];
            while (whole < _files.Count)
            {
                _link.Stream.ReadExactly(head);
                var (kind, file, offset, length) = PageFrames.ReadHead(head);
                if (kind == PageFrames.Sent)
                    throw new IOException($"node {_link.Peer} says it sent every page, and {_files.Count - whole} page file(s) are not whole");
                if (kind != PageFrames.Data || file >= _files.Count || length is <= 0 or > PageFrames.MaxData || offset + (ulong)length > _files[file].Entry.Size)
                    throw new IOException($"node {_link.Peer} sent a page link frame that is not one (kind 0x{kind:x2}, file {file}, {offset}+{length})");
                _link.Stream.ReadExactly(data, 0, length);
                RandomAccess.Write(_handles[file], data.AsSpan(0, length), (long)offset);
                Interlocked.Add(ref _bytes, length);
                lock (_lock)
                {
                    _arrived[file].Add(offset, offset + (ulong)length);
                    if (!complete[file] && _arrived[file].Total == _files[file].Entry.Size)
                    {
                        complete[file] = true;
                        whole++;
                    }
                    Monitor.PulseAll(_lock);
                }
            }
            // Every byte is in: checked against the manifest's checksums, durable, then the source may let go.
            foreach (var file in _files)
                file.Complete();
            _link.Stream.ReadExactly(head); // its "sent"
            if (head[0] != PageFrames.Sent)
                throw new IOException($"node {_link.Peer} sent more than the page files hold");
            PageFrames.WriteHead(head, PageFrames.Done, 0, 0, 0);
            lock (_writeLock)
            {
                _link.Stream.Write(head);
                _link.Stream.Flush();
            }
            _done.TrySetResult();
        }
        catch (Exception e) when (e is IOException or ImageFormatException or ObjectDisposedException or InvalidOperationException)
        {
            Fail(e is ObjectDisposedException or InvalidOperationException ? "the page link was closed" : e.Message);
        }
    }

    private void Fail(string why)
    {
        lock (_lock)
        {
            _failure ??= why;
            Monitor.PulseAll(_lock);
        }
        _done.TrySetException(new IOException(why));
    }

    /// <summary>Closes the files (the page link is its owner's); any wait still under way fails.</summary>
    public void Dispose()
    {
        Fail("the migration ended");
        foreach (var handle in _handles)
            handle?.Dispose();
    }
}
