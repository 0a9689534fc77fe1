using Amber.Kernel;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// The copies taken before the freeze (<see cref="PreCopiedPages"/>) of every tracked process of a
/// checkpoint. What no dump took (a process that went, a checkpoint that failed) goes back to the
/// pool when this is disposed.
/// </summary>
public sealed class PreCopies : IDisposable
{
    private readonly Dictionary<int, PreCopiedPages> _byPid = [];

    private PreCopies()
    {
    }

    /// <summary>The pages the dumps took from the copies (not read under the freeze).</summary>
    public long PagesUsed => _byPid.Values.Sum(p => p.PagesUsed);

    public PreCopiedPages? Of(int pid) => _byPid.GetValueOrDefault(pid);

    /// <summary>
    /// Copies the pages each process wrote before the freeze (<paramref name="writtenBefore"/>, by
    /// pid), into at most <paramref name="buffers"/> buffers of <paramref name="pool"/> in all.
    /// Only memory that holds the process's own pages is read, as a dump reads it. A process that
    /// cannot be read now (gone, going, or holding what a checkpoint refuses) is read under the
    /// freeze, which tells what is wrong with it.
    /// </summary>
    public static PreCopies Take(Dictionary<int, List<(ulong, ulong)>> writtenBefore, PageCopyPool pool, int buffers)
    {
        var copies = new PreCopies();
        foreach (var (pid, written) in writtenBefore)
        {
            if (buffers <= 0)
                break;
            try
            {
                var own = new List<(ulong, ulong)>();
                foreach (var m in ProcFs.ReadMaps(pid))
                {
                    if (VmaClassifier.HoldsPages(VmaClassifier.Classify(pid, m)))
                        own.Add((m.Start, m.End));
                }
                using var memory = new RemoteMemory(pid);
                var pages = PreCopiedPages.Read(memory, written, own, pool, buffers);
                copies._byPid[pid] = pages;
                buffers -= pages.Buffers;
            }
            catch (Exception e) when (e is TargetGoneException or IOException or KernelCallException or CheckpointException)
            {
                // Nothing copied: all of it is read under the freeze.
            }
        }
        return copies;
    }

    public void Dispose()
    {
        foreach (var pages in _byPid.Values)
            pages.Dispose();
    }
}
