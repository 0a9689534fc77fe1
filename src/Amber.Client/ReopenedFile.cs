namespace Amber.Client;

/// <summary>
/// A file stream closed before each checkpoint and opened again by its path after it and after a
/// restore: for a file that must not be saved as open (a log that is rotated meanwhile, a file on a
/// mount that may be elsewhere by then). Opened again with the access and sharing it had; a file
/// opened to append goes on at the end of what is at the path then (a rotated log: a new file), any
/// other at the position it had. Reads and writes made while it is closed wait until it is open again;
/// it is flushed before it closes, so nothing written is lost. If it cannot be opened again, they
/// throw an <see cref="IOException"/> that says why, until the next checkpoint opens it.
/// <code>
/// var log = amber.Add(new ReopenedFile("/var/log/app.log", FileMode.Append, FileAccess.Write));
/// log.Write(line);
/// </code>
/// </summary>
public sealed class ReopenedFile : Stream, ICheckpointResource
{
    private readonly FileMode _reopenMode;
    private readonly FileAccess _access;
    private readonly FileShare _share;
    private readonly bool _appends;
    private readonly object _gate = new();
    private FileStream? _file;
    private long _position;
    private bool _disposed;
    private Exception? _reopenFailed;

    /// <summary>Opens <paramref name="path"/> now, as <see cref="FileStream"/> would.</summary>
    public ReopenedFile(string path, FileMode mode, FileAccess access, FileShare share = FileShare.Read)
    {
        Path = System.IO.Path.GetFullPath(path);
        _access = access;
        _share = share;
        _appends = mode == FileMode.Append;
        // Never truncated or refused again: what it made the first time is its file now.
        _reopenMode = _appends ? FileMode.Append : access == FileAccess.Read ? FileMode.Open : FileMode.OpenOrCreate;
        _file = new FileStream(Path, mode, access, share);
    }

    /// <summary>The file's full path, opened again after each checkpoint.</summary>
    public string Path { get; }

    /// <summary>Whether it is open now (false from a checkpoint's notice until it is taken or restored).</summary>
    public bool IsOpen
    {
        get
        {
            lock (_gate)
                return _file is not null;
        }
    }

    /// <inheritdoc/>
    public override bool CanRead => _access.HasFlag(FileAccess.Read);

    /// <inheritdoc/>
    public override bool CanWrite => _access.HasFlag(FileAccess.Write);

    /// <inheritdoc/>
    public override bool CanSeek => !_appends;

    /// <inheritdoc/>
    public override long Length => Use(f => f.Length);

    /// <inheritdoc/>
    public override long Position
    {
        get => Use(f => f.Position);
        set => Use(f => f.Position = value);
    }

    /// <inheritdoc/>
    public override void Flush() => Use(f =>
    {
        f.Flush();
        return 0;
    });

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        lock (_gate)
            return Open().Read(buffer);
    }

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        lock (_gate)
            Open().Write(buffer);
    }

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => Use(f => f.Seek(offset, origin));

    /// <inheritdoc/>
    public override void SetLength(long value) => Use(f =>
    {
        f.SetLength(value);
        return 0;
    });

    /// <inheritdoc/>
    public void BeforeCheckpoint(CheckpointNotice notice)
    {
        lock (_gate)
        {
            if (_file is null)
                return;
            _file.Flush(flushToDisk: false);
            _position = _file.Position;
            _file.Dispose();
            _file = null;
        }
    }

    /// <inheritdoc/>
    public void AfterCheckpoint(string id) => Reopen();

    /// <inheritdoc/>
    public void AfterRestore(string id) => Reopen();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_gate)
            {
                _disposed = true;
                _file?.Dispose();
                _file = null;
                Monitor.PulseAll(_gate);
            }
        }
        base.Dispose(disposing);
    }

    private void Reopen()
    {
        lock (_gate)
        {
            if (_disposed || _file is not null)
                return;
            try
            {
                var file = new FileStream(Path, _reopenMode, _access, _share);
                if (!_appends)
                    file.Position = _position;
                _file = file;
                _reopenFailed = null;
            }
            catch (Exception e)
            {
                // Reported to the coordinator by the client; those waiting are told (and the next checkpoint tries again).
                _reopenFailed = e;
                throw;
            }
            finally
            {
                Monitor.PulseAll(_gate);
            }
        }
    }

    private T Use<T>(Func<FileStream, T> operation)
    {
        lock (_gate)
            return operation(Open());
    }

    /// <summary>The open file, waiting (the lock let go meanwhile) while it is closed for a checkpoint. Called under the lock.</summary>
    private FileStream Open()
    {
        while (_file is null && !_disposed && _reopenFailed is null)
            Monitor.Wait(_gate);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _file ?? throw new IOException($"{Path} could not be opened again after a checkpoint: {_reopenFailed!.Message}", _reopenFailed);
    }
}
