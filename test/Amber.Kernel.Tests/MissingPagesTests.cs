using Amber.Kernel.Inject;
using Amber.Kernel.Memory;

namespace Amber.Kernel.Tests;

/// <summary>
/// Missing pages served into a real husk: what a copy meets when the process moves its memory, or
/// when the range copied is not one registered mapping. A lazy restore's pager relies on each.
/// </summary>
public sealed class MissingPagesTests
{
    private const ulong Page = 4096;
    private static readonly byte[] Data = [.. Enumerable.Range(0, 4 * (int)Page).Select(i => (byte)(i * 13 + 5))];

    [Fact]
    public void WhileAMoveIsUntoldEveryCopyIsToldToWaitAndAfterItTheOldPlaceIsInNoMapping()
    {
        InjectedHusk.Run((pid, calls, _, memory) =>
        {
            // Moved far from where it was: nothing of it next to its old place.
            ulong from = calls.Mmap(0, 12 * Page, Mman.ProtRead | Mman.ProtWrite, Mman.MapPrivate | Mman.MapAnonymous);
            ulong to = from + 8 * Page;
            calls.Munmap(from + 4 * Page, 4 * Page);
            using var uffd = MissingPages.Create(pid, calls);
            uffd.Register(from, from + 4 * Page);
            // The mremap waits in the husk until its messages are read; meanwhile, copies into both places.
            bool returned = false;
            var meanwhile = Task.Run(() =>
            {
                var events = new List<UserfaultEvent>();
                var read = new UserfaultEvent[4];
                FillOutcome? atOldPlace = null, atNewPlace = null;
                // Until the mremap returned: its messages are always read, or it would wait for ever.
                for (var watch = System.Diagnostics.Stopwatch.StartNew(); !Volatile.Read(ref returned) && watch.Elapsed < TimeSpan.FromSeconds(10);)
                {
                    if (!MissingPages.Wait([uffd], new bool[1], 10))
                        continue;
                    if (atOldPlace is null)
                        (atOldPlace, atNewPlace) = (uffd.Copy(from, Data), uffd.Copy(to, Data));
                    events.AddRange(read.AsSpan(0, uffd.ReadEvents(read)));
                }
                return (atOldPlace, atNewPlace, events);
            });
            calls.MremapFixed(from, 4 * Page, to);
            Volatile.Write(ref returned, true);
            var (atOldPlace, atNewPlace, events) = meanwhile.Result;

            // Its messages unread, every copy is told to wait (EAGAIN): none says pages are lost.
            Assert.Equal(new FillOutcome(0, Again: true, Gone: false), atOldPlace);
            Assert.Equal(new FillOutcome(0, Again: true, Gone: false), atNewPlace);
            // The move, then the unmapping of the old place.
            Assert.Equal([new UserfaultEvent(UserfaultKind.Remap, from, to, 4 * Page), new UserfaultEvent(UserfaultKind.Unmap, from, Length: 4 * Page)], events);
            // Read: the old place is in no mapping (ENOENT), the new one is served.
            Assert.Equal(new FillOutcome(0, false, false, Unmapped: true), uffd.Copy(from, Data));
            Assert.Equal(new FillOutcome(4 * Page, false, false), uffd.Copy(to, Data));
            var back = new byte[Data.Length];
            memory.Read(to, back);
            Assert.Equal(Data, back);
        });
    }

    [Fact]
    public void ACopyAcrossMappingsIsPlacedWholeAndEndsOnlyAtAPageInNone()
    {
        InjectedHusk.Run((pid, calls, _, memory) =>
        {
            ulong at = calls.Mmap(0, 8 * Page, Mman.ProtRead | Mman.ProtWrite, Mman.MapPrivate | Mman.MapAnonymous);
            using var uffd = MissingPages.Create(pid, calls);
            // Registered: pages 0-1 and 3-5 (page 2 is a mapping of its own, not registered), then
            // 3-5 split in three by an mprotect of page 4, which sends no message.
            uffd.Register(at, at + 2 * Page);
            uffd.Register(at + 3 * Page, at + 6 * Page);
            calls.Mprotect(at + 4 * Page, Page, Mman.ProtRead);

            Assert.Equal(new FillOutcome(3 * Page, false, false), uffd.Copy(at + 3 * Page, Data.AsSpan(0, 3 * (int)Page)));
            Assert.Equal(new FillOutcome(2 * Page, false, false, Unmapped: true), uffd.Copy(at, Data.AsSpan(0, 3 * (int)Page)));

            // Pages 5-7: 5 placed above, 6 not registered, 7 registered now. Passing over the page in
            // no registered mapping, the copy does all of it, and 7 gets its data.
            uffd.Register(at + 7 * Page, at + 8 * Page);
            Assert.Equal(new FillOutcome(3 * Page, false, false), uffd.Copy(at + 5 * Page, Data.AsSpan(0, 3 * (int)Page), skipUnmapped: true));

            var back = new byte[8 * Page];
            memory.Read(at, back.AsSpan(0, 2 * (int)Page));
            memory.Read(at + 3 * Page, back.AsSpan(3 * (int)Page, 3 * (int)Page));
            memory.Read(at + 7 * Page, back.AsSpan(7 * (int)Page, (int)Page));
            Assert.Equal(Data.AsSpan(0, 2 * (int)Page).ToArray(), back.AsSpan(0, 2 * (int)Page).ToArray());
            Assert.Equal(Data.AsSpan(0, 3 * (int)Page).ToArray(), back.AsSpan(3 * (int)Page, 3 * (int)Page).ToArray());
            Assert.Equal(Data.AsSpan(2 * (int)Page, (int)Page).ToArray(), back.AsSpan(7 * (int)Page, (int)Page).ToArray());
        });
    }
}
