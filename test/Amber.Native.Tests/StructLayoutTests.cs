using System.Runtime.InteropServices;

namespace Amber.Native.Tests;

/// <summary>
/// Every interop struct against C: sizeof, and the offset and size of every field, compiled once
/// against glibc's headers and once against the kernel's uapi headers alone.
/// </summary>
public sealed class StructLayoutTests
{
    public static TheoryData<string> StructNames => [.. NativeAbi.Structs.Select(s => s.Name)];

    [Theory]
    [MemberData(nameof(StructNames))]
    public void StructMatchesC(string name)
    {
        var spec = NativeAbi.Struct(name);
        var t = spec.Type;
        var errors = new List<string>();
        int checkedSets = 0;

        foreach (var set in Enum.GetValues<HeaderSet>())
        {
            if (spec.CType(set) is not { } ctype)
                continue;
            checkedSets++;
            var c = NativeAbi.Probe(set);
            long csize = c[$"sizeof:{name}"];
            if (NativeAbi.CSharpSize(t) != csize)
                errors.Add($"{set}: Unsafe.SizeOf<{name}>() = {NativeAbi.CSharpSize(t)}, sizeof({ctype}) = {csize}");
            if (Marshal.SizeOf(t) != csize)
                errors.Add($"{set}: Marshal.SizeOf<{name}>() = {Marshal.SizeOf(t)}, sizeof({ctype}) = {csize}");
            if (NativeAbi.SizeConstant(t) is { } sizeConst && sizeConst != csize)
                errors.Add($"{set}: {name}.Size = {sizeConst}, sizeof({ctype}) = {csize}");

            foreach (var f in spec.Fields)
            {
                string cf = spec.CField(set, f.Name);
                long off = NativeAbi.OffsetOf(t, f.Name);
                long coff = c[$"offsetof:{name}.{f.Name}"];
                if (off != coff)
                    errors.Add($"{set}: {name}.{f.Name} at offset {off}, {ctype}.{cf} at {coff}");
                long fsize = Marshal.SizeOf(f.FieldType);
                long cfsize = c[$"fieldsize:{name}.{f.Name}"];
                if (fsize != cfsize)
                    errors.Add($"{set}: {name}.{f.Name} is {fsize} bytes ({f.FieldType.Name}), {ctype}.{cf} is {cfsize}");
            }
        }

        Assert.True(checkedSets > 0, $"{name} names no C type in any header set");
        Assert.True(errors.Count == 0, string.Join('\n', errors));
    }

    [Fact]
    public void EveryStructHasFieldsAndASizeThatAgree()
    {
        // A Size constant that disagrees with the managed layout would break callers even if C agreed.
        foreach (var s in NativeAbi.Structs)
        {
            Assert.NotEmpty(s.Fields);
            if (NativeAbi.SizeConstant(s.Type) is { } size)
                Assert.Equal(size, NativeAbi.CSharpSize(s.Type));
        }
    }

    /// <summary>A struct added to Amber.Native must be added to <see cref="NativeAbi.Structs"/> too.</summary>
    [Fact]
    public void UncheckedStructs()
    {
        var covered = NativeAbi.Structs.Select(s => s.Type).ToHashSet();
        var all = NativeAbi.NativeStructTypes().ToList();
        Assert.NotEmpty(all);
        var missing = all.Where(t => !covered.Contains(t)).Select(t => t.FullName).Order(StringComparer.Ordinal).ToList();
        Assert.True(missing.Count == 0, "structs not checked against C (add them to NativeAbi.Structs): " + string.Join(", ", missing));
    }

    [Fact]
    public void HandDefinitionsAreOnlyForItemsNewerThanTheHeaders()
    {
        // The installed headers are linux-libc-dev 6.1 and glibc 2.36. Only the 6.4+ items may be
        // hand-defined; anything else missing means the probe is checking a copy, not the headers.
        string[] newerThanHeaders = ["PAGEMAP_SCAN", "UFFD_FEATURE_WP_UNPOPULATED", "UFFD_FEATURE_WP_ASYNC", "STATX_MNT_ID_UNIQUE", "PAGE_IS_GUARD", "MAP_DROPPABLE",
            "MADV_GUARD_INSTALL", "MSEAL"];
        foreach (var set in Enum.GetValues<HeaderSet>())
        {
            var hand = NativeAbi.Probe(set).Keys.Where(k => k.StartsWith("hand:", StringComparison.Ordinal)).Select(k => k[5..]).ToList();
            TestContext.Current.SendDiagnosticMessage($"{set} headers: hand-defined {string.Join(", ", hand)}");
            Assert.All(hand, h => Assert.Contains(h, newerThanHeaders));
        }
    }
}
