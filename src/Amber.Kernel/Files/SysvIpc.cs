using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>A System V semaphore set: its values, and the pid of the last operation on each semaphore.</summary>
public sealed record SysvSemaphoreSet(int Key, int Id, uint Mode, uint Uid, uint Gid, ushort[] Values, int[] LastPids);

/// <summary>A System V message queue and the messages in it, oldest first.</summary>
public sealed record SysvMessageQueue(int Key, int Id, uint Mode, uint Uid, uint Gid, int LastSender, int LastReceiver,
    IReadOnlyList<(long Type, byte[] Text)> Messages);

/// <summary>
/// System V semaphore sets and message queues, from amber's side (root passes their permission
/// checks): listed from /proc/sysvipc, read without changing them (GETALL, msgrcv with MSG_COPY),
/// and made to exist again as saved — same id (kernel.sem_next_id / msg_next_id), key, owner, mode,
/// values or messages — reusing an object that still has that id and key.
/// </summary>
public static class SysvIpc
{
    private const int MaxMessages = 1 << 16;

    public static List<SysvSemaphoreSet> SemaphoreSets()
    {
        var sets = new List<SysvSemaphoreSet>();
        // key semid perms nsems uid gid cuid cgid otime ctime
        foreach (var f in Rows("/proc/sysvipc/sem", 10))
        {
            int id = Int(f[1]);
            int count = Int(f[3]);
            var values = new ushort[count];
            var pids = new int[count];
            unsafe
            {
                fixed (ushort* v = values)
                {
                    if (Interop.Semctl(id, 0, Interop.GETALL, (nint)v) < 0)
                    {
                        if (Marshal.GetLastPInvokeError() is Errnos.EINVAL or Errnos.EIDRM)
                            continue; // removed meanwhile
                        Errnos.Throw("semctl(GETALL)", $"semaphore set {id}");
                    }
                }
            }
            for (int i = 0; i < count; i++)
                pids[i] = Math.Max(0, Interop.Semctl(id, i, Interop.GETPID, 0));
            sets.Add(new SysvSemaphoreSet(Int(f[0]), id, Convert.ToUInt32(f[2], 8), UInt(f[4]), UInt(f[5]), values, pids));
        }
        return sets;
    }

    /// <param name="wanted">Which queues to read the messages of, by id and last sender/receiver.</param>
    public static List<SysvMessageQueue> MessageQueues(Func<int, int, int, bool> wanted)
    {
        var queues = new List<SysvMessageQueue>();
        int max = int.Parse(File.ReadAllText("/proc/sys/kernel/msgmax").Trim(), CultureInfo.InvariantCulture);
        // key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid stime rtime ctime
        foreach (var f in Rows("/proc/sysvipc/msg", 14))
        {
            int id = Int(f[1]), sender = Int(f[5]), receiver = Int(f[6]);
            if (!wanted(id, sender, receiver))
                continue;
            var messages = ReadMessages(id, Int(f[4]), max);
            if (messages is null)
                continue; // removed meanwhile
            queues.Add(new SysvMessageQueue(Int(f[0]), id, Convert.ToUInt32(f[2], 8), UInt(f[7]), UInt(f[8]), sender, receiver, messages));
        }
        return queues;
    }

    /// <summary>The semaphore set exists as saved: same id, key and size, owner, mode and values.</summary>
    public static unsafe void Recreate(SysvSemaphoreSet saved)
    {
        var existing = Rows("/proc/sysvipc/sem", 10).FirstOrDefault(f => Int(f[1]) == saved.Id);
        if (existing is not null && (Int(existing[0]) != saved.Key || Int(existing[3]) != saved.Values.Length))
            throw new IOException($"System V semaphore id {saved.Id} is taken by another set (key {Int(existing[0])}, {Int(existing[3])} semaphores)");
        if (existing is null)
        {
            File.WriteAllText("/proc/sys/kernel/sem_next_id", saved.Id.ToString(CultureInfo.InvariantCulture));
            int id = Interop.Semget(saved.Key, saved.Values.Length, Interop.IPC_CREAT | Interop.IPC_EXCL | (int)(saved.Mode & 0x1ff));
            CheckNewId(id, saved.Id, "semget", $"System V semaphore key {saved.Key}", () => Interop.Semctl(id, 0, Interop.IPC_RMID, 0));
        }
        byte* ds = stackalloc byte[Interop.SemidDsSize];
        Errnos.Check(Interop.Semctl(saved.Id, 0, Interop.IPC_STAT, (nint)ds), "semctl(IPC_STAT)", $"semaphore set {saved.Id}");
        SetOwner(new Span<byte>(ds, Interop.SemidDsSize), saved.Uid, saved.Gid, saved.Mode);
        Errnos.Check(Interop.Semctl(saved.Id, 0, Interop.IPC_SET, (nint)ds), "semctl(IPC_SET)", $"semaphore set {saved.Id}");
        fixed (ushort* v = saved.Values)
            Errnos.Check(Interop.Semctl(saved.Id, 0, Interop.SETALL, (nint)v), "semctl(SETALL)", $"semaphore set {saved.Id}");
    }

    /// <summary>The message queue exists as saved: same id and key, owner, mode, and exactly the saved messages.</summary>
    public static unsafe void Recreate(SysvMessageQueue saved)
    {
        var existing = Rows("/proc/sysvipc/msg", 14).FirstOrDefault(f => Int(f[1]) == saved.Id);
        if (existing is not null && Int(existing[0]) != saved.Key)
            throw new IOException($"System V message queue id {saved.Id} is taken by another queue (key {Int(existing[0])})");
        if (existing is null)
        {
            File.WriteAllText("/proc/sys/kernel/msg_next_id", saved.Id.ToString(CultureInfo.InvariantCulture));
            int id = Interop.Msgget(saved.Key, Interop.IPC_CREAT | Interop.IPC_EXCL | (int)(saved.Mode & 0x1ff));
            CheckNewId(id, saved.Id, "msgget", $"System V message queue key {saved.Key}", () => Interop.Msgctl(id, Interop.IPC_RMID, null));
        }
        byte* ds = stackalloc byte[Interop.MsqidDsSize];
        Errnos.Check(Interop.Msgctl(saved.Id, Interop.IPC_STAT, ds), "msgctl(IPC_STAT)", $"message queue {saved.Id}");
        SetOwner(new Span<byte>(ds, Interop.MsqidDsSize), saved.Uid, saved.Gid, saved.Mode);
        Errnos.Check(Interop.Msgctl(saved.Id, Interop.IPC_SET, ds), "msgctl(IPC_SET)", $"message queue {saved.Id}");
        // Empty it, then send the saved messages again in order.
        var buffer = new byte[8 + int.Parse(File.ReadAllText("/proc/sys/kernel/msgmax").Trim(), CultureInfo.InvariantCulture)];
        fixed (byte* b = buffer)
        {
            while (Interop.Msgrcv(saved.Id, b, (nuint)(buffer.Length - 8), 0, Interop.IPC_NOWAIT | Interop.MSG_NOERROR) >= 0)
            {
            }
            if (Marshal.GetLastPInvokeError() != Interop.ENOMSG)
                Errnos.Throw("msgrcv", $"message queue {saved.Id}");
        }
        foreach (var (type, text) in saved.Messages)
        {
            var message = new byte[8 + text.Length];
            BinaryPrimitives.WriteInt64LittleEndian(message, type);
            text.CopyTo(message, 8);
            fixed (byte* m = message)
                Errnos.Check(Interop.Msgsnd(saved.Id, m, (nuint)text.Length, Interop.IPC_NOWAIT), "msgsnd", $"message queue {saved.Id}");
        }
    }

    /// <summary>Copies of the messages in queue <paramref name="id"/> (MSG_COPY: by position, left in place); null if the queue is gone.</summary>
    private static unsafe List<(long, byte[])>? ReadMessages(int id, int count, int max)
    {
        var messages = new List<(long, byte[])>();
        var buffer = new byte[8 + max];
        fixed (byte* b = buffer)
        {
            for (int i = 0; i < Math.Min(count, MaxMessages); i++)
            {
                nint n = Interop.Msgrcv(id, b, (nuint)max, i, Interop.IPC_NOWAIT | Interop.MSG_COPY);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno is Errnos.EINVAL or Errnos.EIDRM && i == 0)
                        return null;
                    if (errno == Interop.ENOMSG)
                        break; // fewer than /proc said: taken meanwhile
                    Errnos.Throw("msgrcv(MSG_COPY)", $"message queue {id}");
                }
                messages.Add((BinaryPrimitives.ReadInt64LittleEndian(buffer), buffer.AsSpan(8, (int)n).ToArray()));
            }
        }
        return messages;
    }

    /// <summary>struct ipc_perm, first in semid_ds and msqid_ds: key, uid, gid, cuid, cgid, mode (u16)... IPC_SET takes uid, gid and mode.</summary>
    private static void SetOwner(Span<byte> ds, uint uid, uint gid, uint mode)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(ds[4..], uid);
        BinaryPrimitives.WriteUInt32LittleEndian(ds[8..], gid);
        BinaryPrimitives.WriteUInt16LittleEndian(ds[20..], (ushort)(mode & 0x1ff));
    }

    private static void CheckNewId(int id, int wanted, string call, string target, Func<int> remove)
    {
        if (id < 0)
            Errnos.Throw(call, target);
        if (id != wanted)
        {
            remove();
            throw new IOException($"{target} came back as id {id}, not {wanted}");
        }
    }

    private static IEnumerable<string[]> Rows(string path, int fields) =>
        File.ReadLines(path).Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= fields);

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    private static uint UInt(string s) => uint.Parse(s, CultureInfo.InvariantCulture);
}
