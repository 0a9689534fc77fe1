using Amber.Kernel.Files;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Kernel.Tests;

/// <summary>
/// Batches of injected calls on a real husk: the loop of <see cref="Trampoline"/> makes them in
/// order in one stop, stops at the first failure (or unexpected result), and a recovery lets the
/// rest go on.
/// </summary>
public sealed class SyscallBatchTests : IDisposable
{
    private const ulong Page = 4096;
    private readonly string _file = Path.Combine(Path.GetTempPath(), $"amber-batch-{Guid.NewGuid():n}");
    private readonly byte[] _content = Enumerable.Range(0, 2 * (int)Page).Select(i => (byte)(i * 7 + 3)).ToArray();

    public SyscallBatchTests() => File.WriteAllBytes(_file, _content);

    public void Dispose() => File.Delete(_file);

    [Fact]
    public void CallsRunInOrderAndReportTheirResults()
    {
        InjectedHusk.Run((pid, calls, batch, memory) =>
        {
            ulong at = FreeAddress(pid);
            int fd = LowestFreeFd(pid);
            long read = 0;
            batch.Mmap(at, 4 * Page, Mman.ProtRead | Mman.ProtWrite, Mman.MapPrivate | Mman.MapAnonymous | Mman.MapFixedNoReplace);
            batch.OpenAt(_file, OpenFlags.ReadOnly, fd);
            batch.Pread(fd, at + Page, 2 * Page, 0, done: n => read = n);
            batch.Close(fd);
            batch.Mprotect(at, 4 * Page, Mman.ProtRead);
            Assert.Equal(5, batch.Pending);
            batch.Flush();

            Assert.Equal(0, batch.Pending);
            Assert.Equal(2 * (long)Page, read);
            var back = new byte[2 * Page];
            memory.Read(at + Page, back);
            Assert.Equal(_content, back);
            var map = Assert.Single(ProcFs.ReadMaps(pid), m => m.Start == at);
            Assert.Equal(at + 4 * Page, map.End);
            Assert.True(map.Read && !map.Write, map.ToString());
            Assert.DoesNotContain(fd, ProcFs.ListFds(pid));
        });
    }

    [Fact]
    public void AFailureStopsTheBatchAndNamesTheCall()
    {
        InjectedHusk.Run((pid, calls, batch, _) =>
        {
            ulong at = FreeAddress(pid);
            batch.Mmap(at, Page, Mman.ProtRead, Mman.MapPrivate | Mman.MapAnonymous | Mman.MapFixedNoReplace);
            batch.Madvise(at + 1, Page, Advice.DontDump); // misaligned: EINVAL
            batch.Mmap(at + 2 * Page, Page, Mman.ProtRead, Mman.MapPrivate | Mman.MapAnonymous | Mman.MapFixedNoReplace);
            var error = Assert.Throws<KernelCallException>(batch.Flush);

            Assert.Equal(Errnos.EINVAL, error.Errno);
            Assert.StartsWith("madvise(MADV_DONTDUMP)", error.Message);
            Assert.Equal(0, batch.Pending);
            var maps = ProcFs.ReadMaps(pid);
            Assert.Contains(maps, m => m.Start == at);
            Assert.DoesNotContain(maps, m => m.Start == at + 2 * Page); // never made
            Assert.Equal(pid, calls.GetPid()); // the process takes calls as before
        });
    }

    [Fact]
    public void ARecoveryLetsTheRestGoOn()
    {
        InjectedHusk.Run((pid, _, batch, memory) =>
        {
            ulong at = FreeAddress(pid);
            int fd = LowestFreeFd(pid);
            var seen = new List<(long, int?)>();
            batch.Mmap(at, 4 * Page, Mman.ProtRead | Mman.ProtWrite, Mman.MapPrivate | Mman.MapAnonymous | Mman.MapFixedNoReplace);
            batch.Madvise(at + 1, Page, Advice.DontDump, (r, e) => { seen.Add((r, e?.Errno)); return true; });
            batch.OpenAt(_file, OpenFlags.ReadOnly, fd);
            // Four pages asked of a file of two: a short read, which its recovery accepts.
            batch.Pread(fd, at, 4 * Page, 0, (r, e) => { seen.Add((r, e?.Errno)); return e == null; });
            batch.Close(fd);
            batch.Mprotect(at, 4 * Page, Mman.ProtRead);
            batch.Flush();

            Assert.Equal([(-Errnos.EINVAL, Errnos.EINVAL), (2 * (long)Page, null)], seen);
            var back = new byte[2 * Page];
            memory.Read(at, back);
            Assert.Equal(_content, back);
            Assert.False(Assert.Single(ProcFs.ReadMaps(pid), m => m.Start == at).Write); // the last call ran
        });
    }

    [Fact]
    public void AResultOtherThanExpectedStopsTheBatch()
    {
        InjectedHusk.Run((pid, _, batch, _) =>
        {
            int lowest = LowestFreeFd(pid);
            batch.OpenAt(_file, OpenFlags.ReadOnly, lowest + 5);
            var error = Assert.Throws<KernelCallException>(batch.Flush);
            Assert.Contains($"returned {lowest}, not {lowest + 5}", error.Message);
            Assert.Contains(lowest, ProcFs.ListFds(pid)); // what it did is left for the caller to see
        });
    }

    private static int LowestFreeFd(int pid)
    {
        var open = ProcFs.ListFds(pid);
        return Enumerable.Range(0, open.Count + 1).First(n => !open.Contains(n));
    }

    private static ulong FreeAddress(int pid)
    {
        // Above everything the husk has: nothing of it is there.
        return (ProcFs.ReadMaps(pid).Where(m => m.Path != "[stack]" && m.Path != "[vsyscall]" && m.Start < 0x7f0000000000).Max(m => m.End) + 0x100000) & ~(Page - 1);
    }
}
