using Amber.Kernel.Files;
using Amber.Kernel.Proc;

namespace Amber.Kernel.Tests;

/// <summary>The procfs readers and parsers on this very process.</summary>
public sealed class ProcParserLiveTests
{
    [Fact]
    public void OwnMapsHaveTheStackAndTheRuntime()
    {
        var maps = ProcParsers.ParseMaps(File.ReadAllText("/proc/self/maps"));
        Assert.Contains(maps, m => m.Path == "[stack]" && m.Read && m.Write);
        Assert.Contains(maps, m => m.Path == "[vdso]" && m.Execute);
        Assert.Contains(maps, m => m.IsFileBacked && Path.GetFileName(m.Path) == "libcoreclr.so" && m.Execute);
        Assert.Contains(maps, m => m.IsFileBacked && Path.GetFileName(m.Path) == "System.Private.CoreLib.dll");
        Assert.Contains(maps, m => m.IsFileBacked && Path.GetFileName(m.Path) == "libc.so.6");

        // The kernel lists VMAs in address order, without overlap.
        for (int i = 0; i < maps.Count; i++)
        {
            Assert.True(maps[i].Start < maps[i].End, maps[i].ToString());
            if (i > 0)
                Assert.True(maps[i - 1].End <= maps[i].Start, $"{maps[i - 1]} / {maps[i]}");
        }
    }

    [Fact]
    public void ReadMapsOfSelfMatchesTheFile()
    {
        var viaPid = ProcFs.ReadMaps(Environment.ProcessId);
        var stack = Assert.Single(viaPid, m => m.Path == "[stack]");
        Assert.True(stack.Length >= (ulong)Environment.SystemPageSize);
    }

    [Fact]
    public void OwnSmapsHaveTheMappingsOfMapsWithTheirFlags()
    {
        var smaps = Smaps.Read(Environment.ProcessId);
        var stack = Assert.Single(smaps, e => e.Map.Path == "[stack]");
        Assert.Equal(VmFlags.GrowsDown | VmFlags.Read | VmFlags.Write, stack.Flags & (VmFlags.GrowsDown | VmFlags.Read | VmFlags.Write));
        Assert.All(smaps, e => Assert.NotEqual(VmFlags.None, e.Flags));
        Assert.All(smaps, e => Assert.Equal(e.Map.Read, (e.Flags & VmFlags.Read) != 0));
        Assert.Contains(smaps, e => e.Map.Path == "[vdso]");
    }

    [Fact]
    public void OwnStat()
    {
        int pid = Environment.ProcessId;
        var stat = ProcFs.ReadStat(pid);
        Assert.Equal(pid, stat.Pid);
        // /proc/PID/stat shows the main thread, which may well sleep while a worker runs this test.
        Assert.Contains(stat.State, "RS");
        Assert.True(stat.StartCode > 0);
        Assert.True(stat.EndCode > stat.StartCode);
        Assert.True(stat.StartStack > 0);
        Assert.True(stat.NumThreads >= 1);
        Assert.True(stat.ArgStart < stat.ArgEnd);
        Assert.True(stat.ArgEnd <= stat.EnvStart);
        Assert.True(stat.EnvStart < stat.EnvEnd);

        // The stack the kernel made at exec holds argv and envp.
        var maps = ProcFs.ReadMaps(pid);
        var stack = Assert.Single(maps, m => m.Path == "[stack]");
        Assert.InRange(stat.StartStack, stack.Start, stack.End);
        Assert.InRange(stat.ArgStart, stack.Start, stack.End);
    }

    [Fact]
    public void OwnStatus()
    {
        int pid = Environment.ProcessId;
        var status = ProcFs.ReadStatus(pid);
        var stat = ProcFs.ReadStat(pid);
        Assert.Equal(pid, status.Tgid);
        Assert.Equal(stat.ParentPid, status.ParentPid);
        Assert.Equal(4, status.Uids.Length);
        Assert.Equal(4, status.Gids.Length);
        Assert.True(status.Threads >= 1);
        Assert.Equal(pid, status.NsPids[0]); // the first NSpid is the pid in /proc's own namespace
        Assert.True(ProcFs.TryReadStatus(pid, out var again));
        Assert.Equal(pid, again!.Tgid);
        Assert.Equal(File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n'), status.Name);
    }

    [Fact]
    public void FdInfoOfAnOpenFile()
    {
        string path = Path.Join(Path.GetTempPath(), $"amber-kernel-tests-{Guid.NewGuid():N}");
        try
        {
            using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite);
            fs.Write(new byte[10]);
            fs.Flush();
            int fd = (int)fs.SafeFileHandle.DangerousGetHandle();
            var info = ProcFs.ReadFdInfo(Environment.ProcessId, fd);
            Assert.Equal(10L, info.Position);
            Assert.Equal(2U, info.Flags & 3); // O_RDWR
            Assert.NotEqual(0U, info.Flags & OpenFlags.CloseOnExec); // .NET opens with O_CLOEXEC
            Assert.True(info.MountId > 0);
            Assert.Equal(path, ProcFs.ReadFdLink(Environment.ProcessId, fd));
            Assert.Contains(fd, ProcFs.ListFds(Environment.ProcessId));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void MissingProcessIsTargetGone()
    {
        // PIDs are at most 2^22; this one cannot exist.
        const int pid = int.MaxValue;
        Assert.False(ProcFs.Exists(pid));
        Assert.Throws<TargetGoneException>(() => ProcFs.ReadStat(pid));
        Assert.Throws<TargetGoneException>(() => ProcFs.ReadMaps(pid));
        Assert.False(ProcFs.TryReadStatus(pid, out var status));
        Assert.Null(status);
    }
}
