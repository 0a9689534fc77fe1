using Amber.Image.Schema;
using Amber.Kernel.Files;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// Saves what waits to be read on a unix socket, left in place: datagrams with their senders'
/// addresses, seqpacket records, stream bytes, and the descriptors they carry. A descriptor in
/// flight is recorded as the fd of a process of the checkpoint that is the same open file (taken
/// from it at restore), or, when no process holds it, as a file to open again; anything else in
/// flight (a pipe or socket nobody holds) is refused.
/// </summary>
public static class SocketQueueDumper
{
    private static readonly FdKind[] Reopenable = [FdKind.FdRegular, FdKind.FdDirectory, FdKind.FdDevNull, FdKind.FdCharacterDevice];

    public static void Dump(ProcessImage holder, FdImage fd, IList<SocketMessage> queue, IReadOnlyList<ProcessImage> processes)
    {
        var messages = UnixSocketQueue.Peek(holder.Pid, fd.Fd);
        try
        {
            foreach (var m in messages)
            {
                var message = new SocketMessage { Data = ByteString.CopyFrom(m.Data), Sender = ByteString.CopyFrom(m.Sender) };
                foreach (var carried in m.Descriptors)
                    message.Fds.Add(Resolve(carried, holder.Pid, fd, processes));
                queue.Add(message);
            }
        }
        finally
        {
            foreach (var m in messages)
                m.Dispose();
        }
    }

    private static InFlightFd Resolve(HeldFile carried, int pid, FdImage socket, IReadOnlyList<ProcessImage> processes)
    {
        foreach (var p in processes)
        {
            foreach (var f in p.Fds)
            {
                if (ProcessFiles.SameDescription(Environment.ProcessId, carried.Fd, p.Pid, f.Fd))
                    return new InFlightFd { HolderPid = p.Pid, HolderFd = f.Fd };
            }
        }
        string what = $"fd {socket.Fd} ({socket.Description})";
        FdImage file;
        try
        {
            file = FdTable.Describe(Environment.ProcessId, carried.Fd);
        }
        catch (UnsupportedResourceException e)
        {
            throw new UnsupportedResourceException(pid, what, $"a unix socket carrying in flight {e.Kind}, which no process of the checkpoint holds");
        }
        if (Array.IndexOf(Reopenable, file.Kind) < 0)
            throw new UnsupportedResourceException(pid, what, $"a unix socket carrying in flight {file.Description}, which no process of the checkpoint holds");
        file.Fd = -1;
        file.CloseOnExec = false;
        return new InFlightFd { File = file };
    }
}
