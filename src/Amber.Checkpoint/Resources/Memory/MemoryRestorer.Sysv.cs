using Amber.Checkpoint.Restore;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// System V attachments. shmat maps a whole segment, from its start; what the program did to the
/// attachment since shows in its mappings: mprotect split it into pieces (System V mappings never
/// merge again, and each piece counts in the segment's shm_nattch), munmap took pieces away,
/// mremap moved some. The pieces of one attachment are those of its segment whose address minus
/// their offset in it (the file offset /proc/PID/maps shows) is the same — where shmat put it, and
/// what shmdt is given. Each attachment is made again by one shmat of the whole segment there,
/// then what is no piece is unmapped and each piece gets its protection (a boundary between two
/// pieces of one protection made by an mprotect there and back); where that place is not free now
/// (the attachment is gone at its start, and something else of the process is there), the segment
/// is attached at a free place, and the pieces are moved into theirs with mremap.
/// </summary>
public sealed partial class MemoryRestorer
{
    private void AttachSysv(Vma first, HashSet<Vma> attached)
    {
        int id = (int)first.ShmemId;
        bool haveBase = first.FileOffset <= first.Start;
        ulong at = first.Start - first.FileOffset;
        var pieces = image.Mm.Vmas.Where(v => v.Kind == VmaKind.VmaSysv && !v.Inherited && v.ShmemId == first.ShmemId
            && v.FileOffset <= v.Start && v.Start - v.FileOffset == at).OrderBy(v => v.Start).ToList();
        if (!haveBase)
            pieces = [first];
        foreach (var piece in pieces)
            attached.Add(piece);

        var segment = SysvSharedMemory.Find(id) ?? throw new CheckpointException($"process {image.Pid}: System V shared memory {id} does not exist");
        ulong size = ImageFormat.WholePages(segment.Size);
        if (pieces.Any(p => p.FileOffset + (p.End - p.Start) > size))
            throw new CheckpointException($"process {image.Pid}: an attachment of System V shared memory {id} reaches beyond its {size} bytes");
        // The attachment was read-only (SHM_RDONLY) if it may not be made writable: VmFlags without
        // "mw" (older images: none of its pieces writable).
        bool readOnly = pieces.All(p => p.VmFlags != 0 ? ((VmFlags)p.VmFlags & VmFlags.MayWrite) == 0 : (p.Prot & Mman.ProtWrite) == 0);

        bool inPlace = haveBase && TryAttach(id, at, readOnly);
        ulong where = at;
        if (!inPlace)
        {
            var used = image.Mm.Vmas.Select(v => (v.Start, v.End)).Append((trampoline, trampoline + HuskProcess.TrampolineSize));
            where = calls.AttachSysv(id, AddressHoles.Find(used, size), readOnly);
        }

        // Unmapped: what is no piece.
        ulong cursor = where;
        foreach (var piece in pieces)
        {
            ulong from = where + piece.FileOffset;
            if (from > cursor)
                calls.Munmap(cursor, from - cursor);
            cursor = from + (piece.End - piece.Start);
        }
        if (cursor < where + size)
            calls.Munmap(cursor, where + size - cursor);

        if (inPlace)
        {
            int attachedProt = Mman.ProtRead | (readOnly ? 0 : Mman.ProtWrite);
            Vma? previous = null;
            foreach (var piece in pieces)
            {
                ulong length = piece.End - piece.Start;
                int prot = (int)piece.Prot;
                if (prot != attachedProt)
                {
                    calls.Mprotect(piece.Start, length, prot);
                }
                else if (previous is not null && previous.End == piece.Start && previous.Prot == piece.Prot)
                {
                    // Two pieces of one protection side by side: one mapping after the shmat, two before.
                    calls.Mprotect(piece.Start, length, prot == Mman.ProtNone ? Mman.ProtRead : Mman.ProtNone);
                    calls.Mprotect(piece.Start, length, prot);
                }
                previous = piece;
            }
            return;
        }
        // Moved into place, every piece its own mapping: a piece moved next to one of the same
        // flags would merge with it (mprotect never merges them again), so they travel with
        // alternating protections, and get their own once all are in place.
        for (int i = 0; i < pieces.Count; i++)
            calls.Mprotect(where + pieces[i].FileOffset, pieces[i].End - pieces[i].Start, i % 2 == 0 ? Mman.ProtNone : Mman.ProtRead);
        foreach (var piece in pieces)
            calls.MremapFixed(where + piece.FileOffset, piece.End - piece.Start, piece.Start);
        foreach (var piece in pieces)
            calls.Mprotect(piece.Start, piece.End - piece.Start, (int)piece.Prot);
    }

    /// <summary>shmat at exactly <paramref name="address"/>, if that much is free there now.</summary>
    private bool TryAttach(int id, ulong address, bool readOnly)
    {
        try
        {
            return calls.AttachSysv(id, address, readOnly) == address;
        }
        catch (KernelCallException e) when (e.Errno is Errnos.EINVAL or Errnos.ENOMEM or Errnos.EPERM)
        {
            return false; // something is mapped in the way, or the place is out of reach
        }
    }
}
