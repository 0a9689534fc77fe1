using System.Text;
using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    public int MemfdCreate(string name, bool allowSealing)
    {
        var bytes = Encoding.UTF8.GetBytes(name + "\0");
        Memory.Write(Scratch, bytes);
        return (int)Call($"memfd_create({name})", SyscallNumbers.MemfdCreate, Scratch, Interop.MFD_CLOEXEC | (allowSealing ? Interop.MFD_ALLOW_SEALING : 0));
    }

    /// <summary>shmat(2) at a fixed address; returns where it was attached.</summary>
    public ulong AttachSysv(int id, ulong address, bool readOnly) =>
        (ulong)Call($"shmat({id})", SyscallNumbers.Shmat, (ulong)id, address, readOnly ? (ulong)Interop.SHM_RDONLY : 0);

    public void ChangeOwner(int fd, uint uid, uint gid) => Call("fchown", SyscallNumbers.Fchown, (ulong)fd, uid, gid);

    /// <summary>fchmod(2): permissions exactly, whatever the umask made of them at creation.</summary>
    public void ChangeMode(int fd, uint mode) => Call("fchmod", SyscallNumbers.Fchmod, (ulong)fd, mode);

    public void MakeDirectory(string path, uint mode) => Call($"mkdir({path})", SyscallNumbers.Mkdir, WriteString(path), mode);

    public void RemoveDirectory(string path) => Call($"rmdir({path})", SyscallNumbers.Rmdir, WriteString(path));

    public void Truncate(int fd, long size) => Call("ftruncate", SyscallNumbers.Ftruncate, (ulong)fd, (ulong)size);

    public void AddSeals(int fd, uint seals) => Call("fcntl(F_ADD_SEALS)", SyscallNumbers.Fcntl, (ulong)fd, Interop.F_ADD_SEALS, seals);
}
