using System.Runtime.InteropServices;

namespace Amber.Native.Tests;

/// <summary>
/// test/TestTargets/layout.c (maintained with the test targets) built from the repository and run:
/// what it prints for the structs and constants Amber.Native declares must agree with C#.
/// </summary>
public sealed class LayoutProgramTests
{
    /// <summary>layout.c struct name → C# struct. A C field printed as "field_size" is the C# field "size".</summary>
    private static readonly Dictionary<string, Type> StructMap = new(StringComparer.Ordinal)
    {
        ["user_regs_struct"] = typeof(UserRegs),
        ["iovec"] = typeof(Iovec),
        ["clone_args"] = typeof(CloneArgs),
        ["prctl_mm_map"] = typeof(PrctlMmMap),
        ["kernel_sigaction"] = typeof(KernelSigaction),
        ["stack_t"] = typeof(StackT),
        ["ptrace_rseq_configuration"] = typeof(RseqConfiguration),
        ["pm_scan_arg"] = typeof(PmScanArg),
        ["page_region"] = typeof(PageRegion),
        ["uffdio_api"] = typeof(UffdioApi),
    };

    /// <summary>The structs the layout.c check must always find (the others are compared when it prints them).</summary>
    private static readonly string[] Required =
        ["user_regs_struct", "clone_args", "prctl_mm_map", "kernel_sigaction", "stack_t", "ptrace_rseq_configuration"];

    private static readonly Lazy<Dictionary<string, long>> LayoutOutput = new(() =>
        CProgram.CompileAndRun(Path.Join(RepoPaths.Root, "test", "TestTargets", "layout.c")));

    [Fact]
    public void StructsAgreeWithCSharp()
    {
        var output = LayoutOutput.Value;
        var errors = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int compared = 0;
        foreach (var (key, value) in output)
        {
            if (key.StartsWith("const ", StringComparison.Ordinal))
                continue;
            int dot = key.IndexOf('.', StringComparison.Ordinal);
            string cstruct = key[..dot];
            string cfield = key[(dot + 1)..];
            if (!StructMap.TryGetValue(cstruct, out var t))
                continue;
            seen.Add(cstruct);
            compared++;
            if (cfield == "size")
            {
                if (NativeAbi.CSharpSize(t) != value)
                    errors.Add($"sizeof({cstruct}) = {value}, Unsafe.SizeOf<{t.Name}>() = {NativeAbi.CSharpSize(t)}");
                if (NativeAbi.SizeConstant(t) is { } size && size != value)
                    errors.Add($"sizeof({cstruct}) = {value}, {t.Name}.Size = {size}");
                continue;
            }
            string field = cfield == "field_size" ? "size" : cfield;
            if (t.GetField(field) is null)
            {
                errors.Add($"{cstruct}.{cfield} has no field {t.Name}.{field}");
                continue;
            }
            long offset = Marshal.OffsetOf(t, field).ToInt64();
            if (offset != value)
                errors.Add($"{cstruct}.{cfield} at offset {value}, {t.Name}.{field} at {offset}");
        }

        Assert.True(errors.Count == 0, string.Join('\n', errors));
        Assert.All(Required, r => Assert.Contains(r, seen));
        Assert.True(compared > 60, $"only {compared} struct lines compared");
    }

    [Fact]
    public void SiginfoSizeAgrees()
    {
        Assert.Equal(PeekSiginfoArgs.SiginfoSize, LayoutOutput.Value["siginfo_t.size"]);
    }

    [Fact]
    public void ConstantsAgreeWithCSharp()
    {
        var csharp = NativeAbi.Constants.Where(c => c.Name.StartsWith("Interop.", StringComparison.Ordinal) && c.Value.HasValue)
            .ToDictionary(c => c.GlibcExpression ?? c.Name["Interop.".Length..], c => c.Value!.Value, StringComparer.Ordinal);
        var syscalls = NativeAbi.Syscalls.ToDictionary(s => "SYS_" + s.CName, s => s.Number, StringComparer.Ordinal);

        var errors = new List<string>();
        var unmatched = new List<string>();
        int compared = 0;
        foreach (var (key, value) in LayoutOutput.Value)
        {
            if (!key.StartsWith("const ", StringComparison.Ordinal))
                continue;
            string name = key["const ".Length..];
            if (!csharp.TryGetValue(name, out long mine) && !syscalls.TryGetValue(name, out mine))
            {
                unmatched.Add(name);
                continue;
            }
            compared++;
            if (mine != value)
                errors.Add($"layout.c: {name} = {value}; C# has {mine}");
        }

        TestContext.Current.SendDiagnosticMessage($"layout.c constants with no C# counterpart: {string.Join(", ", unmatched)}");
        Assert.True(errors.Count == 0, string.Join('\n', errors));
        Assert.True(compared > 50, $"only {compared} constants compared");
    }
}
