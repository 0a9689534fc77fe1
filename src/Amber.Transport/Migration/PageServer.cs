using System.Collections.Concurrent;
using Amber.Image;
using Amber.Transport.Peers;
using Microsoft.Win32.SafeHandles;

namespace Amber.Transport.Migration;

/// <summary>
/// The source's side of a post-copy migration's pages: the page files of the checkpoints it sent
/// without their data, served over the page link while the group runs at the destination. Ranges the
/// destination needs (a touched page, a read of its restore) go first; between them, once the group
/// runs there (<see cref="Push"/>), every file is pushed in order, newest checkpoint first (its pages
/// are the ones the group has), each byte once.
/// It ends when the destination says every file is in and checked; the files are opened when it is
/// made, so nothing done to the store meanwhile (a merge, a retention pass) takes them away.
/// </summary>
internal sealed class PageServer : IDisposable
{
    private readonly PeerLink _link;
    private readonly List<(SafeFileHandle File, long Size, string Path)> _files = [];
    private readonly List<int> _order;
    private readonly ByteRanges[] _sent;
    private readonly ConcurrentQueue<(int File, ulong Offset, int Length)> _needs = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly TaskCompletionSource<long> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile string? _failure;
    private volatile bool _finished, _pushing;
    private long _bytes;

    /// <param name="link">The page link, its hello and request exchanged.</param>
    /// <param name="files">The page files whose data was left out, in the stream's order.</param>
    /// <param name="pushFirst">Indexes of <paramref name="files"/> in the order to push them.</param>
    public PageServer(PeerLink link, IReadOnlyList<(string Path, long Size)> files, IReadOnlyList<int> pushFirst)
    {
        _link = link;
        try
        {
            foreach (var (path, size) in files)
                _files.Add((File.OpenHandle(path, FileMode.Open, FileAccess.Read), size, path));
        }
        catch
        {
            Dispose();
            throw;
        }
        _order = [.. pushFirst];
        _sent = [.. files.Select(_ => new ByteRanges())];
        foreach (var s in _sent)
            s.Add(0, ImageFormat.PageSize); // a page file's header (its first page) went with the checkpoint
    }

    /// <summary>Until the group runs there, one frame of the push goes this often (well within any peer timeout).</summary>
    private static readonly TimeSpan HeldPushEvery = TimeSpan.FromSeconds(1);

    /// <summary>How long the destination may take, once it has every byte, to check them all and say so.</summary>
    private static readonly TimeSpan DoneWait = TimeSpan.FromMinutes(2);

    /// <summary>Done: every byte sent and the destination has them all (the bytes sent), or a failure (IOException).</summary>
    public Task<long> Completion => _done.Task;

    /// <summary>Bytes of page data sent so far.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>
    /// Starts serving on threads of its own. The destination may say nothing for long (no page
    /// touched): a dead one is noticed by the writes, which time out, and by its silence once all is sent.
    /// </summary>
    public void Start()
    {
        _link.WaitAtMost(Timeout.InfiniteTimeSpan);
        new Thread(ReadNeeds) { IsBackground = true, Name = "amber-page-needs" }.Start();
        new Thread(Serve) { IsBackground = true, Name = "amber-page-server" }.Start();
    }

    /// <summary>
    /// The group runs at the destination (or may: the control link broke after the commit): every
    /// page is pushed from now on. Before, only what the restore there asks for is sent, so that its
    /// reads are not queued behind megabytes of pushed pages in the sockets' buffers, nor its two
    /// cores shared with receiving them, while the group is down.
    /// </summary>
    public void Push()
    {
        _pushing = true;
        Wake();
    }

    /// <summary>The destination's frames: what it needs, and its "done".</summary>
    private void ReadNeeds()
    {
        Span<byte> head = stackalloc byte[PageFrames.HeadBytes];
        try
        {
            while (true)
            {
                _link.Stream.ReadExactly(head);
                var (kind, file, offset, length) = PageFrames.ReadHead(head);
                if (kind == PageFrames.Done)
                {
                    _finished = true;
                    Wake();
                    return;
                }
                if (kind != PageFrames.Need || file >= _files.Count || length <= 0 || offset + (ulong)length > (ulong)_files[file].Size)
                    throw new IOException($"node {_link.Peer} sent a page link frame that is not one (kind 0x{kind:x2}, file {file}, {offset}+{length})");
                _needs.Enqueue((file, offset, length));
                Wake();
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            _failure ??= e is IOException ? e.Message : "the page link was closed";
            Wake();
        }
    }

    private void Wake()
    {
        try
        {
            _wake.Release();
        }
        catch (ObjectDisposedException)
        {
            // Disposed: nothing waits any more.
        }
    }

    private void Serve()
    {
        byte[] frame = new byte[PageFrames.HeadBytes + PageFrames.MaxData];
        try
        {
            int pushing = 0;
            bool allSent = false;
            while (true)
            {
                if (_failure is { } failure)
                    throw new IOException(failure);
                if (_finished)
                {
                    if (!allSent)
                        throw new IOException($"node {_link.Peer} said it had every page before they were all sent");
                    _done.TrySetResult(Bytes);
                    return;
                }
                if (_needs.TryDequeue(out var need))
                {
                    SendGaps(need.File, need.Offset, need.Offset + (ulong)need.Length, frame);
                    continue;
                }
                // Held: a need, the push, the end or a failure wakes it; a frame pushed now and then
                // keeps the link from falling silent (the destination gives a silent link up).
                if (!allSent && !_pushing && _wake.Wait(HeldPushEvery))
                    continue;
                if (!allSent)
                {
                    // The next stretch of the file being pushed that has not gone yet.
                    while (pushing < _order.Count && !_sent[_order[pushing]].FirstGap(0, (ulong)_files[_order[pushing]].Size, out _, out _))
                        pushing++;
                    if (pushing < _order.Count)
                    {
                        int file = _order[pushing];
                        _sent[file].FirstGap(0, (ulong)_files[file].Size, out ulong start, out ulong end);
                        SendGaps(file, start, Math.Min(end, start + PageFrames.MaxData), frame);
                        continue;
                    }
                    allSent = true;
                    PageFrames.WriteHead(frame, PageFrames.Sent, 0, 0, 0);
                    _link.Stream.Write(frame, 0, PageFrames.HeadBytes);
                    _link.Stream.Flush();
                    continue;
                }
                if (!_wake.Wait(DoneWait))
                    throw new IOException($"node {_link.Peer} did not say it had every page within {DoneWait.TotalSeconds:0} s of the last one sent");
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            _done.TrySetException(new IOException(e is IOException ? e.Message : "the page link was closed", e));
        }
    }

    /// <summary>Sends what of [start, end) of a file has not gone yet, a frame at a time.</summary>
    private void SendGaps(int file, ulong start, ulong end, byte[] frame)
    {
        var (handle, _, path) = _files[file];
        while (_sent[file].FirstGap(start, end, out ulong from, out ulong to))
        {
            int length = (int)Math.Min(to - from, (ulong)PageFrames.MaxData);
            var data = frame.AsSpan(PageFrames.HeadBytes, length);
            int read = 0;
            while (read < length)
            {
                int n = RandomAccess.Read(handle, data[read..], (long)from + read);
                if (n == 0)
                    throw new IOException($"{path} ends before byte {from + (ulong)read}: the checkpoint changed while it was sent");
                read += n;
            }
            PageFrames.WriteHead(frame, PageFrames.Data, file, from, length);
            _link.Stream.Write(frame, 0, PageFrames.HeadBytes + length);
            _sent[file].Add(from, from + (ulong)length);
            Interlocked.Add(ref _bytes, length);
            start = from + (ulong)length;
        }
        _link.Stream.Flush();
    }

    public void Dispose()
    {
        foreach (var (file, _, _) in _files)
            file.Dispose();
        _wake.Dispose();
    }
}
