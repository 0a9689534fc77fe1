using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>Turns a /proc/PID/maps line into a <see cref="Vma"/>, or refuses it with the reason.</summary>
public static class VmaClassifier
{
    public static Vma Classify(int pid, MapsEntry m)
    {
        var vma = new Vma
        {
            Start = m.Start, End = m.End, Prot = (uint)m.Protection, Shared = m.Shared, Name = m.Path, FileOffset = m.Offset,
        };
        string what = $"the mapping {m.Start:x}-{m.End:x} ({(m.Path.Length == 0 ? "anonymous" : m.Path)})";
        switch (m.Path)
        {
            case "[vdso]": vma.Kind = VmaKind.VmaVdso; return vma;
            case "[vvar]": vma.Kind = VmaKind.VmaVvar; return vma;
            case "[vvar_vclock]": vma.Kind = VmaKind.VmaVvarVclock; return vma;
            case "[vsyscall]": vma.Kind = VmaKind.VmaVsyscall; return vma;
            case "[heap]": vma.Kind = VmaKind.VmaHeap; break;
            case "[stack]": vma.Kind = VmaKind.VmaStack; vma.GrowsDown = true; break;
            default:
                if (m.Path.Length == 0 || m.Path.StartsWith("[anon:", StringComparison.Ordinal))
                {
                    vma.Kind = VmaKind.VmaAnonymous;
                    break;
                }
                if (m.Path.StartsWith("/memfd:", StringComparison.Ordinal) || (m.Path.StartsWith("/dev/zero", StringComparison.Ordinal) && m.Shared))
                {
                    vma.Kind = VmaKind.VmaShmem;
                    vma.ShmemId = m.Inode;
                    return vma;
                }
                if (m.Path.StartsWith("/SYSV", StringComparison.Ordinal))
                {
                    vma.Kind = VmaKind.VmaSysv;
                    vma.ShmemId = m.Inode; // a segment's inode number is its shmid
                    return vma;
                }
                if (m.IsDeleted && m.IsFileBacked)
                {
                    // Its contents are saved with the files deleted while in use (DeletedFileDumper).
                    if (!FileStat.TryGet($"/proc/{pid}/map_files/{m.Start:x}-{m.End:x}", out var deleted) || !deleted.IsRegular)
                        throw new UnsupportedResourceException(pid, what, "a mapping of a deleted file that is not a regular file");
                    vma.Kind = VmaKind.VmaDeletedFile;
                    vma.ShmemId = m.Inode;
                    vma.Path = m.Path[..^" (deleted)".Length];
                    return vma;
                }
                if (m.IsDeleted)
                    throw new UnsupportedResourceException(pid, what, "a mapping of a deleted special file");
                if (!m.IsFileBacked)
                    throw new UnsupportedResourceException(pid, what, "a special mapping");
                if (!FileStat.TryGet(ProcFs.InView(pid, m.Path), out var st) || st.Inode != m.Inode)
                    throw new UnsupportedResourceException(pid, what, "a mapping of a file that was replaced on disk");
                vma.Kind = VmaKind.VmaFile;
                vma.Path = m.Path;
                vma.Identity = new FileIdentity { Device = st.Device, Inode = st.Inode, Size = st.Size, MtimeNs = st.MtimeNs };
                return vma;
        }
        if (m.Shared)
            throw new UnsupportedResourceException(pid, what, "shared anonymous memory");
        return vma;
    }

    /// <summary>
    /// Private memory whose pages belong to the process (not to a file or the kernel): in a private
    /// mapping of a file, a deleted file or a memfd, the pages it wrote (copy-on-write).
    /// </summary>
    public static bool HoldsPages(Vma vma) =>
        !vma.Shared && vma.Kind is VmaKind.VmaAnonymous or VmaKind.VmaHeap or VmaKind.VmaStack or VmaKind.VmaFile or VmaKind.VmaDeletedFile
            or VmaKind.VmaShmem;

    /// <summary>
    /// Private memory that write tracking takes (userfaultfd write-protect): writable (what is not
    /// cannot change), and not MAP_DROPPABLE (which the kernel does not let userfaultfd register).
    /// </summary>
    public static bool Trackable(Vma vma) =>
        HoldsPages(vma) && (vma.Prot & Mman.ProtWrite) != 0 && ((VmFlags)vma.VmFlags & VmFlags.Droppable) == 0;

    /// <summary>Anonymous memory reads as zeros where never written, so zero pages need not be stored.</summary>
    public static bool IsAnonymous(Vma vma) => vma.Kind is VmaKind.VmaAnonymous or VmaKind.VmaHeap or VmaKind.VmaStack;
}
