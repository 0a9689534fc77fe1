using System.Globalization;
using Amber.Kernel.Proc;

namespace Amber.Kernel.Tests;

/// <summary>The procfs parsers on literal samples in the kernel's exact formats.</summary>
public sealed class ProcParserSampleTests
{
    [Fact]
    public void MapsLineWithSpacesInThePath()
    {
        var e = ProcParsers.ParseMapsLine(
            "7f1c2a600000-7f1c2a622000 r--p 0001a000 fe:00 1837042                    /home/user/my dir/lib with  spaces.so");
        Assert.Equal(0x7f1c2a600000UL, e.Start);
        Assert.Equal(0x7f1c2a622000UL, e.End);
        Assert.Equal(0x22000UL, e.Length);
        Assert.True(e.Read);
        Assert.False(e.Write);
        Assert.False(e.Execute);
        Assert.False(e.Shared);
        Assert.Equal(0x1a000UL, e.Offset);
        Assert.Equal(0xfeU, e.DevMajor);
        Assert.Equal(0U, e.DevMinor);
        Assert.Equal(1837042UL, e.Inode);
        Assert.Equal("/home/user/my dir/lib with  spaces.so", e.Path);
        Assert.True(e.IsFileBacked);
        Assert.False(e.IsDeleted);
        Assert.Equal(1, e.Protection);
    }

    [Fact]
    public void MapsLineOfADeletedSharedFile()
    {
        var e = ProcParsers.ParseMapsLine("7f0000001000-7f0000003000 rw-s 00000000 00:01 2049                       /memfd:amber (deleted)");
        Assert.True(e.Shared);
        Assert.True(e.Read);
        Assert.True(e.Write);
        Assert.Equal(0U, e.DevMajor);
        Assert.Equal(1U, e.DevMinor);
        Assert.Equal(2049UL, e.Inode);
        Assert.Equal("/memfd:amber (deleted)", e.Path);
        Assert.True(e.IsDeleted);
        Assert.True(e.IsFileBacked);
        Assert.Equal(3, e.Protection);
    }

    [Fact]
    public void MapsLineOfADeletedFileWithSpaces()
    {
        var e = ProcParsers.ParseMapsLine("00400000-00401000 r-xp 00000000 08:02 131 /tmp/a b/x (deleted)");
        Assert.True(e.Execute);
        Assert.Equal(5, e.Protection);
        Assert.Equal("/tmp/a b/x (deleted)", e.Path);
        Assert.True(e.IsDeleted);
    }

    [Theory]
    [InlineData("55d0c6e4a000-55d0c6e6b000 rw-p 00000000 00:00 0                          [heap]", "[heap]")]
    [InlineData("7ffd5a3b2000-7ffd5a3d3000 rw-p 00000000 00:00 0                          [stack]", "[stack]")]
    [InlineData("7ffd5a3f6000-7ffd5a3f8000 r-xp 00000000 00:00 0                          [vdso]", "[vdso]")]
    [InlineData("7f1c2a000000-7f1c2a400000 rw-p 00000000 00:00 0                          [anon:amber scratch]", "[anon:amber scratch]")]
    [InlineData("7fb7317bd000-7fb731881000 rw-p 00000000 00:00 0 ", "")] // anonymous: the kernel leaves a trailing space
    [InlineData("7fb7317bd000-7fb731881000 ---p 00000000 00:00 0", "")]
    public void MapsLineOfSpecialAndAnonymousMappings(string line, string path)
    {
        var e = ProcParsers.ParseMapsLine(line);
        Assert.Equal(path, e.Path);
        Assert.Equal(0UL, e.Inode);
        Assert.Equal(0U, e.DevMajor);
        Assert.False(e.IsFileBacked);
        Assert.False(e.IsDeleted);
        Assert.False(e.Shared);
    }

    [Fact]
    public void MapsLineOfANoneMapping()
    {
        var e = ProcParsers.ParseMapsLine("7fb7317bd000-7fb731881000 ---p 00000000 00:00 0");
        Assert.False(e.Read || e.Write || e.Execute);
        Assert.Equal(0, e.Protection);
    }

    [Fact]
    public void MapsLineWithLongHexDeviceNumbers()
    {
        // major 0x103 = 259 (nvme), minor of 5 hex digits (minors are 20 bits); offset past 4 GiB.
        var e = ProcParsers.ParseMapsLine("7f0000000000-7f0000100000 r--s 100000000 103:1a2b3 4294967302               /data/big.bin");
        Assert.Equal(0x103U, e.DevMajor);
        Assert.Equal(0x1a2b3U, e.DevMinor);
        Assert.Equal(0x100000000UL, e.Offset);
        Assert.Equal(4294967302UL, e.Inode);
        Assert.True(e.Shared);
        Assert.Equal("/data/big.bin", e.Path);
    }

    [Fact]
    public void MapsLineWithFiveDigitMajor()
    {
        var e = ProcParsers.ParseMapsLine("1000-2000 r--p 00000000 fffff:00 12 /x");
        Assert.Equal(0xfffffU, e.DevMajor);
        Assert.Equal(0U, e.DevMinor);
    }

    [Fact]
    public void MapsLineWithBadPermissionsThrows()
    {
        Assert.Throws<FormatException>(() => ProcParsers.ParseMapsLine("1000-2000 rw 00000000 00:00 0"));
    }

    [Fact]
    public void MapsTextSkipsEmptyLines()
    {
        const string text =
            "00400000-00401000 r-xp 00000000 00:01 5                                  /memfd:amber-husk (deleted)\n" +
            "\n" +
            "7ffd5a3b2000-7ffd5a3d3000 rw-p 00000000 00:00 0                          [stack]\n" +
            "7ffd5a3f6000-7ffd5a3f8000 r-xp 00000000 00:00 0                          [vdso]\n";
        var maps = ProcParsers.ParseMaps(text);
        Assert.Equal(["/memfd:amber-husk (deleted)", "[stack]", "[vdso]"], maps.Select(m => m.Path));
        Assert.Equal(0x400000UL, maps[0].Start);
    }

    /// <summary>A stat line with all 52 fields; field N (N ≥ 4) holds N × 1000 unless overridden.</summary>
    private static string StatLine(string comm, int fields = 52, Dictionary<int, string>? overrides = null)
    {
        var parts = new List<string> { "1234", $"({comm})", "S" };
        for (int n = 4; n <= fields; n++)
            parts.Add(overrides is not null && overrides.TryGetValue(n, out var v) ? v : (n * 1000).ToString(CultureInfo.InvariantCulture));
        return string.Join(' ', parts) + "\n";
    }

    [Theory]
    [InlineData("a) b (c)")]
    [InlineData("a")]
    [InlineData(") S 1 2 3 (")]
    [InlineData("with spaces and ))")]
    [InlineData("")]
    public void StatWithAwkwardComm(string comm)
    {
        var s = ProcParsers.ParseStat(StatLine(comm));
        Assert.Equal(1234, s.Pid);
        Assert.Equal('S', s.State);
        Assert.Equal(4000, s.ParentPid);
        Assert.Equal(5000, s.ProcessGroup);
        Assert.Equal(6000, s.Session);
        Assert.Equal(9000U, s.Flags);
        Assert.Equal(20000, s.NumThreads);
        Assert.Equal(22000UL, s.StartTime);
        Assert.Equal(26000UL, s.StartCode);
        Assert.Equal(27000UL, s.EndCode);
        Assert.Equal(28000UL, s.StartStack);
        Assert.Equal(45000UL, s.StartData);
        Assert.Equal(46000UL, s.EndData);
        Assert.Equal(47000UL, s.StartBrk);
        Assert.Equal(48000UL, s.ArgStart);
        Assert.Equal(49000UL, s.ArgEnd);
        Assert.Equal(50000UL, s.EnvStart);
        Assert.Equal(51000UL, s.EnvEnd);
    }

    [Fact]
    public void StatLiteralFromAKernel()
    {
        // A real line (comm edited to contain ") (" ), 52 fields, with tpgid -1 and rsslim = ULONG_MAX.
        const string line =
            "14795 (a) b (c)) R 14791 14791 8862 0 -1 4194304 97 0 0 0 0 0 0 0 20 0 1 0 128853 3133440 381 " +
            "18446744073709551615 94732699508736 94732699528617 140723091709744 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 " +
            "94732699544624 94732699546240 94733211398144 140723091712483 140723091712503 140723091712503 140723091714027 0\n";
        var s = ProcParsers.ParseStat(line);
        Assert.Equal(14795, s.Pid);
        Assert.Equal('R', s.State);
        Assert.Equal(14791, s.ParentPid);
        Assert.Equal(14791, s.ProcessGroup);
        Assert.Equal(8862, s.Session);
        Assert.Equal(4194304U, s.Flags); // PF_RANDOMIZE: running, not exiting
        Assert.Equal(0U, s.Flags & ParsedStat.Exiting);
        Assert.False(s.Ending);
        Assert.Equal(1, s.NumThreads);
        Assert.Equal(128853UL, s.StartTime);
        Assert.Equal(94732699508736UL, s.StartCode);
        Assert.Equal(94732699528617UL, s.EndCode);
        Assert.Equal(140723091709744UL, s.StartStack);
        Assert.Equal(94732699544624UL, s.StartData);
        Assert.Equal(94732699546240UL, s.EndData);
        Assert.Equal(94733211398144UL, s.StartBrk);
        Assert.Equal(140723091712483UL, s.ArgStart);
        Assert.Equal(140723091712503UL, s.ArgEnd);
        Assert.Equal(140723091712503UL, s.EnvStart);
        Assert.Equal(140723091714027UL, s.EnvEnd);
    }

    [Fact]
    public void StatNegativeFieldsParse()
    {
        // tty_nr/tpgid (7, 8) and nice (19) may be negative; the parser must not choke on them.
        var s = ProcParsers.ParseStat(StatLine("x", overrides: new() { [7] = "-1", [8] = "-1", [19] = "-20", [40] = "7", [41] = "2" }));
        Assert.Equal(26000UL, s.StartCode);
        Assert.Equal(-20, s.Nice);
        Assert.Equal(7, s.RtPriority);
        Assert.Equal(2, s.Policy);
    }

    [Fact]
    public void StatusCpuMaskComesLowestCpusFirst()
    {
        // 32-bit groups, the highest first: CPUs 0, 1 and 32..39.
        var status = ProcParsers.ParseStatus("Name:\tx\nCpus_allowed:\tff,00000003\nCpus_allowed_list:\t0-1,32-39\n");
        Assert.Equal(new byte[] { 0x03, 0, 0, 0, 0xff }, status.CpusAllowed);
    }

    [Fact]
    public void StatWithOnlyTheFirst51FieldsParses()
    {
        // Kernels before 3.5 stop at field 44; since then there are 52. 51 is the parser's minimum.
        var s = ProcParsers.ParseStat(StatLine("x", fields: 51));
        Assert.Equal(51000UL, s.EnvEnd);
    }

    [Theory]
    [InlineData(50)]
    [InlineData(44)]
    [InlineData(3)]
    public void StatWithTooFewFieldsThrows(int fields)
    {
        Assert.Throws<FormatException>(() => ProcParsers.ParseStat(StatLine("x", fields: fields)));
    }

    [Theory]
    [InlineData("1234 x S 1 2 3")]
    [InlineData("1234 (x S 1 2 3")]
    [InlineData("1234 x) S 1 2 3 (")]
    public void StatWithoutCommThrows(string line)
    {
        Assert.Throws<FormatException>(() => ProcParsers.ParseStat(line));
    }

    private const string StatusText =
        "Name:\tamber husk\n" +
        "Umask:\t0027\n" +
        "State:\tt (tracing stop)\n" +
        "Tgid:\t4321\n" +
        "Ngid:\t0\n" +
        "Pid:\t4322\n" +
        "PPid:\t1\n" +
        "TracerPid:\t77\n" +
        "Uid:\t1000\t1001\t1002\t1003\n" +
        "Gid:\t100\t101\t102\t103\n" +
        "FDSize:\t64\n" +
        "Groups:\t4 24 27 \n" +
        "NStgid:\t4321\t7\n" +
        "NSpid:\t4322\t8\n" +
        "NSpgid:\t4321\t7\n" +
        "NSsid:\t4321\t7\n" +
        "VmPeak:\t    2268 kB\n" +
        "Threads:\t3\n" +
        "SigQ:\t0/63370\n" +
        "SigPnd:\t0000000000000100\n" +
        "ShdPnd:\t0000000000000200\n" +
        "SigBlk:\tfffffffe7ffbfeff\n" +
        "SigIgn:\t0000000000001000\n" +
        "SigCgt:\t0000000180000000\n" +
        "Seccomp:\t2\n" +
        "Seccomp_filters:\t1\n" +
        "Cpus_allowed_list:\t0-3\n";

    [Fact]
    public void StatusSample()
    {
        var s = ProcParsers.ParseStatus(StatusText);
        Assert.Equal("amber husk", s.Name);
        Assert.Equal('t', s.State);
        Assert.Equal(4321, s.Tgid);
        Assert.Equal(1, s.ParentPid);
        Assert.Equal(77, s.TracerPid);
        Assert.Equal([1000U, 1001U, 1002U, 1003U], s.Uids);
        Assert.Equal([100U, 101U, 102U, 103U], s.Gids);
        Assert.Equal([4U, 24U, 27U], s.Groups);
        Assert.Equal(0x17U, s.Umask); // 0027 octal
        Assert.Equal(3, s.Threads);
        Assert.Equal(0x100UL, s.SigPending);
        Assert.Equal(0x200UL, s.ShdPending);
        Assert.Equal(0xfffffffe7ffbfeffUL, s.SigBlocked);
        Assert.Equal([4322, 8], s.NsPids);
        Assert.Equal(2, s.Seccomp);
    }

    [Theory]
    [InlineData("Groups:\t\n")]
    [InlineData("Groups:\t \n")] // what the kernel prints for no supplementary groups
    [InlineData("Groups:\n")]
    public void StatusWithEmptyGroups(string groupsLine)
    {
        var s = ProcParsers.ParseStatus("Name:\tx\nUid:\t0\t0\t0\t0\n" + groupsLine + "Threads:\t1\n");
        Assert.Empty(s.Groups);
        Assert.Equal([0U, 0U, 0U, 0U], s.Uids);
        Assert.Equal(1, s.Threads);
    }

    [Fact]
    public void StatusWithoutOptionalLinesHasDefaults()
    {
        // Umask: appeared in 4.7; without it the parser assumes 022.
        var s = ProcParsers.ParseStatus("Name:\tx\nState:\tR (running)\nTgid:\t5\n");
        Assert.Equal(18U, s.Umask);
        Assert.Equal('R', s.State);
        Assert.Equal(5, s.Tgid);
        Assert.Empty(s.NsPids);
        Assert.Empty(s.Groups);
        Assert.Equal(0UL, s.SigBlocked);
        Assert.Equal(0, s.Seccomp);
    }

    [Fact]
    public void FdInfoWithOctalFlags()
    {
        var f = ProcParsers.ParseFdInfo("pos:\t12345\nflags:\t02100002\nmnt_id:\t29\nino:\t1234\n");
        Assert.Equal(12345L, f.Position);
        Assert.Equal(0x88002U, f.Flags); // O_CLOEXEC | O_LARGEFILE | O_RDWR
        Assert.Equal(29, f.MountId);
    }

    [Fact]
    public void FdInfoOfAPipe()
    {
        var f = ProcParsers.ParseFdInfo("pos:\t0\nflags:\t04000\nmnt_id:\t15\nino:\t98765\n");
        Assert.Equal(0L, f.Position);
        Assert.Equal(0x800U, f.Flags); // O_NONBLOCK | O_RDONLY
        Assert.Equal(15, f.MountId);
    }

    [Fact]
    public void FdInfoWithExtraLines()
    {
        // eventfd/epoll/inotify fdinfo carry more "key: value" lines, some with colons in the value.
        var f = ProcParsers.ParseFdInfo("pos:\t8\nflags:\t02000000\nmnt_id:\t16\nino:\t1057\ntfd:        5 events:       19 data: 5\n");
        Assert.Equal(8L, f.Position);
        Assert.Equal(0x80000U, f.Flags);
        Assert.Equal(16, f.MountId);
    }

    [Fact]
    public void FdInfoWithLocks()
    {
        // As this kernel prints them: a POSIX lock to byte 29, an OFD lock (pid -1), a flock to the end.
        var f = ProcParsers.ParseFdInfo("pos:\t0\nflags:\t02100002\nmnt_id:\t27\nino:\t11657249\n" +
            "lock:\t1: POSIX  ADVISORY  WRITE 31385 fe:00:11657249 20 29\n" +
            "lock:\t2: OFDLCK ADVISORY  READ -1 fe:00:11657249 5 11\n" +
            "lock:\t3: FLOCK  ADVISORY  READ 31385 fe:00:11657249 0 EOF\n");
        Assert.Equal(
            [new FdLock("POSIX", "ADVISORY", "WRITE", 31385, "fe:00", 11657249, 20, 29),
             new FdLock("OFDLCK", "ADVISORY", "READ", -1, "fe:00", 11657249, 5, 11),
             new FdLock("FLOCK", "ADVISORY", "READ", 31385, "fe:00", 11657249, 0, null)],
            f.Locks);
        Assert.True(f.Locks[0].Write);
        Assert.False(f.Locks[1].Write);
        Assert.Empty(ProcParsers.ParseFdInfo("pos:\t0\nflags:\t0\nmnt_id:\t1\n").Locks);
    }

    [Fact]
    public void FdInfoWithALockLineOfAnotherShapeIsRefused() =>
        Assert.Throws<FormatException>(() => ProcParsers.ParseFdInfo("pos:\t0\nflags:\t0\nmnt_id:\t1\nlock:\t1: POSIX  ADVISORY  WRITE 5 <none> 0 EOF\n"));

    [Fact]
    public void LimitsInResourceOrderWithUnlimited()
    {
        const string Sample = """
            Limit                     Soft Limit           Hard Limit           Units     
            Max cpu time              unlimited            unlimited            seconds   
            Max file size             unlimited            unlimited            bytes     
            Max data size             unlimited            unlimited            bytes     
            Max stack size            8388608              unlimited            bytes     
            Max core file size        0                    unlimited            bytes     
            Max resident set          unlimited            unlimited            bytes     
            Max processes             96362                96362                processes 
            Max open files            1024                 524288               files     
            Max locked memory         8388608              8388608              bytes     
            Max address space         unlimited            unlimited            bytes     
            Max file locks            unlimited            unlimited            locks     
            Max pending signals       96362                96362                signals   
            Max msgqueue size         819200               819200               bytes     
            Max nice priority         0                    0                    
            Max realtime priority     0                    0                    
            Max realtime timeout      unlimited            unlimited            us        

            """;
        var limits = ProcParsers.ParseLimits(Sample);
        Assert.Equal(16, limits.Length);
        Assert.Equal((ulong.MaxValue, ulong.MaxValue), limits[0]);
        Assert.Equal((8388608UL, ulong.MaxValue), limits[3]);
        Assert.Equal((1024UL, 524288UL), limits[7]);
        Assert.Equal((0UL, 0UL), limits[14]);
        Assert.Equal((ulong.MaxValue, ulong.MaxValue), limits[15]);
    }

    [Fact]
    public void SmapsKeepsTheMapsLineAndTheVmFlagsOfEachMapping()
    {
        const string text = """
            7f0390000000-7f0390010000 rw-p 00000000 00:00 0 
            Size:                 64 kB
            KernelPageSize:        4 kB
            Rss:                  64 kB
            Locked:                0 kB
            THPeligible:           0
            VmFlags: rd wr mr mw me dc ac 
            7f0392400000-7f0392410000 rw-p 00000000 00:00 0                          /SYSV00000000 (deleted)
            Size:                 64 kB
            AnonHugePages:         0 kB
            VmFlags: rd wr mr mw me lo lf ac zz sl gu 
            7ffd1b5e0000-7ffd1b601000 rw-p 00000000 00:00 0                          [stack]
            VmFlags: rd wr mr mw me gd ac 
            ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
            Size:                  4 kB
            """;
        var entries = Smaps.Parse(System.Text.Encoding.UTF8.GetBytes(text));
        Assert.Equal(4, entries.Count);
        Assert.Equal(0x7f0390000000UL, entries[0].Map.Start);
        Assert.Equal(VmFlags.Read | VmFlags.Write | VmFlags.MayRead | VmFlags.MayWrite | VmFlags.MayExec | VmFlags.DontCopy | VmFlags.Account,
            entries[0].Flags);
        Assert.Equal("/SYSV00000000 (deleted)", entries[1].Map.Path);
        var second = entries[1].Flags;
        Assert.Equal(VmFlags.Locked | VmFlags.LockOnFault | VmFlags.Sealed | VmFlags.MaybeGuard | VmFlags.Unknown,
            second & (VmFlags.Locked | VmFlags.LockOnFault | VmFlags.Sealed | VmFlags.MaybeGuard | VmFlags.Unknown));
        Assert.Equal("rd wr mr mw me gd ac", VmFlagNames.Format(entries[2].Flags));
        Assert.Equal("[vsyscall]", entries[3].Map.Path);
        Assert.Equal(VmFlags.None, entries[3].Flags); // no VmFlags line
    }
}
