using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources.Pipes;

/// <summary>
/// Makes a saved pipe again inside a process: both ends above <c>floor</c>, its capacity, the bytes it
/// held; an end no process held any more is then closed (-1), so the reader reads what is left and
/// then end-of-file, and the writer gets EPIPE, as before.
/// </summary>
public static class PipeMaker
{
    /// <summary>A new pipe's capacity, and a FIFO's: only another one is set.</summary>
    public const int DefaultCapacity = 65536;

    public static (int Read, int Write) Make(RemoteCalls calls, PipeImage pipe, int floor)
    {
        var (read, write) = calls.Pipe();
        int readEnd = calls.DupAbove(read, floor), writeEnd = calls.DupAbove(write, floor);
        calls.Close(read);
        calls.Close(write);
        if (pipe.Capacity != DefaultCapacity)
            calls.SetPipeSize(writeEnd, (int)pipe.Capacity);
        if (pipe.Packets.Count > 0)
        {
            // One write a packet, through the write end in packet mode for the time of it.
            calls.SetStatusFlags(writeEnd, OpenFlags.Direct);
            int at = 0;
            foreach (int size in pipe.Packets)
            {
                ProcessFiles.WriteThrough(calls.Memory.Pid, writeEnd, pipe.Data.Span.Slice(at, size));
                at += size;
            }
            calls.SetStatusFlags(writeEnd, 0);
        }
        else if (!pipe.Data.IsEmpty)
        {
            ProcessFiles.WriteThrough(calls.Memory.Pid, writeEnd, pipe.Data.Span);
        }
        if (pipe.NoReader)
        {
            calls.Close(readEnd);
            readEnd = -1;
        }
        if (pipe.NoWriter)
        {
            calls.Close(writeEnd);
            writeEnd = -1;
        }
        return (readEnd, writeEnd);
    }

    /// <summary>Another open file of an end (as /proc/PID/fd/N opens it): one of <see cref="FdImage.PipeReopened"/>, with its own flags.</summary>
    public static int Reopen(RemoteCalls calls, int end, FdImage fd) =>
        calls.OpenAt($"/proc/self/fd/{end}", ((int)fd.Flags & ~OpenFlags.CreationOnly) | OpenFlags.CloseOnExec);
}
