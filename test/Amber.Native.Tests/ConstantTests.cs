namespace Amber.Native.Tests;

/// <summary>Interop constants, ioctl numbers and syscall numbers against the C headers.</summary>
public sealed class ConstantTests
{
    public static TheoryData<string> ConstantNames => [.. NativeAbi.Constants.Select(c => c.Name)];

    public static TheoryData<string> SyscallNames => [.. NativeAbi.Syscalls.Select(s => s.Name)];

    [Theory]
    [MemberData(nameof(ConstantNames))]
    public void ConstantMatchesC(string name)
    {
        var k = NativeAbi.Constants.Single(c => c.Name == name);
        Assert.True(k.Value.HasValue, $"{name} is not an integer: compare it some other way and list it in NativeAbi.Unchecked");
        string key = $"const:{name}";
        var seen = new List<string>();
        if (k.GlibcExpression is { } g)
        {
            long c = NativeAbi.GlibcProbe[key];
            Assert.True(c == k.Value, $"{name} = {k.Value} (0x{k.Value:x}) but glibc's {g} = {c} (0x{c:x})");
            seen.Add("glibc");
        }
        if (k.KernelMacro is not null && NativeAbi.KernelProbe.TryGetValue(key, out long kv))
        {
            Assert.True(kv == k.Value, $"{name} = {k.Value} (0x{k.Value:x}) but the kernel's {k.KernelExpression} = {kv} (0x{kv:x})");
            seen.Add("kernel");
        }
        Assert.NotEmpty(seen);
    }

    [Theory]
    [MemberData(nameof(SyscallNames))]
    public void SyscallNumberMatchesC(string name)
    {
        var (_, number, cname) = NativeAbi.Syscalls.Single(s => s.Name == name);
        long glibc = NativeAbi.GlibcProbe[$"sys:{name}"];
        Assert.True(glibc == number, $"SyscallNumbers.{name} = {number}, SYS_{cname} = {glibc}");
        Assert.True(NativeAbi.KernelProbe.TryGetValue($"sys:{name}", out long kernel), $"asm/unistd.h has no __NR_{cname}");
        Assert.True(kernel == number, $"SyscallNumbers.{name} = {number}, __NR_{cname} = {kernel}");
    }

    [Fact]
    public void PosixSpawnBuffersAreLargeEnough()
    {
        // Spawner hands stack buffers of these sizes to posix_spawn_file_actions_init/posix_spawnattr_init.
        long actions = NativeAbi.GlibcProbe["sizeof:posix_spawn_file_actions_t"];
        long attr = NativeAbi.GlibcProbe["sizeof:posix_spawnattr_t"];
        Assert.True(Interop.PosixSpawnFileActionsSize >= actions,
            $"Interop.PosixSpawnFileActionsSize = {Interop.PosixSpawnFileActionsSize} < sizeof(posix_spawn_file_actions_t) = {actions}");
        Assert.True(Interop.PosixSpawnAttrSize >= attr,
            $"Interop.PosixSpawnAttrSize = {Interop.PosixSpawnAttrSize} < sizeof(posix_spawnattr_t) = {attr}");
    }

    [Fact]
    public void EveryConstantIsCheckedOrListed()
    {
        // The lists come from reflection, so this only guards against the reflection finding nothing.
        Assert.Contains(NativeAbi.Constants, c => c.Name == "Interop.PTRACE_SEIZE");
        Assert.Contains(NativeAbi.Constants, c => c.Name == "CloneArgs.CLONE_THREAD");
        Assert.Contains(NativeAbi.Syscalls, s => s.Name == "Clone3" && s.CName == "clone3");
        Assert.Contains(NativeAbi.Syscalls, s => s.Name == "RtTgsigqueueinfo" && s.CName == "rt_tgsigqueueinfo");
        foreach (var name in NativeAbi.Unchecked.Keys)
            Assert.DoesNotContain(NativeAbi.Constants, c => c.Name == name);
    }

    [Fact]
    public void SnakeCaseOfSyscallNames()
    {
        Assert.Equal("pread64", NativeAbi.SnakeCase("Pread64"));
        Assert.Equal("set_tid_address", NativeAbi.SnakeCase("SetTidAddress"));
        Assert.Equal("clone3", NativeAbi.SnakeCase("Clone3"));
    }
}
