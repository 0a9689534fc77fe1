using System.Buffers.Binary;
using System.Globalization;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>A System V shared memory segment as /proc/sysvipc/shm lists it.</summary>
public readonly record struct SysvSegment(int Key, int Id, uint Mode, ulong Size, uint Uid, uint Gid);

/// <summary>
/// System V shared memory from amber's side: finding a segment's attributes, and recreating it with
/// the same id (kernel.shm_next_id), key, size, owner and mode, with given contents.
/// </summary>
public static class SysvSharedMemory
{
    public static SysvSegment? Find(int id)
    {
        foreach (var line in File.ReadLines("/proc/sysvipc/shm").Skip(1))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 11 || int.Parse(f[1], CultureInfo.InvariantCulture) != id)
                continue;
            return new SysvSegment(int.Parse(f[0], CultureInfo.InvariantCulture), id, Convert.ToUInt32(f[2], 8),
                ulong.Parse(f[3], CultureInfo.InvariantCulture), uint.Parse(f[7], CultureInfo.InvariantCulture), uint.Parse(f[8], CultureInfo.InvariantCulture));
        }
        return null;
    }

    /// <summary>
    /// Makes the segment exist as saved: an existing one with the same id, key and size is reused (its
    /// contents overwritten), otherwise it is created with that id. Returns a writer for its contents.
    /// </summary>
    public static unsafe void Recreate(SysvSegment saved, Action<Span<byte>> fill)
    {
        var existing = Find(saved.Id);
        if (existing is { } e && (e.Key != saved.Key || e.Size != saved.Size))
            throw new IOException($"System V shared memory id {saved.Id} is taken by another segment (key {e.Key}, {e.Size} bytes)");
        if (existing is null)
        {
            File.WriteAllText("/proc/sys/kernel/shm_next_id", saved.Id.ToString(CultureInfo.InvariantCulture));
            int id = Interop.Shmget(saved.Key, (nuint)saved.Size, Interop.IPC_CREAT | Interop.IPC_EXCL | (int)(saved.Mode & 0x1ff));
            if (id < 0)
                Errnos.Throw("shmget", $"System V shared memory key {saved.Key}");
            if (id != saved.Id)
            {
                Interop.Shmctl(id, Interop.IPC_RMID, null);
                throw new IOException($"System V shared memory came back as id {id}, not {saved.Id}");
            }
        }
        byte* ds = stackalloc byte[Interop.ShmidDsSize];
        Errnos.Check(Interop.Shmctl(saved.Id, Interop.IPC_STAT, ds), "shmctl(IPC_STAT)", $"segment {saved.Id}");
        // struct ipc_perm: key, uid, gid, cuid, cgid, mode (u16) ...: IPC_SET takes uid, gid and mode.
        var perm = new Span<byte>(ds, Interop.ShmidDsSize);
        BinaryPrimitives.WriteUInt32LittleEndian(perm[4..], saved.Uid);
        BinaryPrimitives.WriteUInt32LittleEndian(perm[8..], saved.Gid);
        BinaryPrimitives.WriteUInt16LittleEndian(perm[20..], (ushort)(saved.Mode & 0x1ff));
        Errnos.Check(Interop.Shmctl(saved.Id, Interop.IPC_SET, ds), "shmctl(IPC_SET)", $"segment {saved.Id}");
        nint address = Interop.Shmat(saved.Id, 0, 0);
        if (address == -1)
            Errnos.Throw("shmat", $"segment {saved.Id}");
        try
        {
            fill(new Span<byte>((void*)address, checked((int)saved.Size)));
        }
        finally
        {
            Interop.Shmdt(address);
        }
    }
}
