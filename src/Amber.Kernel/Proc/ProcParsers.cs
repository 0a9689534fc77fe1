using System.Globalization;

namespace Amber.Kernel.Proc;

/// <summary>Pure parsers for procfs text, kept apart from file access so they can be tested on samples.</summary>
public static class ProcParsers
{
    public static MapsEntry ParseMapsLine(ReadOnlySpan<char> line)
    {
        // start-end perms offset major:minor inode [path]
        int dash = line.IndexOf('-');
        ulong start = Hex(line[..dash]);
        line = line[(dash + 1)..];
        ulong end = Hex(NextField(ref line));
        var perms = NextField(ref line);
        if (perms.Length < 4)
            throw new FormatException($"bad permissions '{perms}' in maps line");
        ulong offset = Hex(NextField(ref line));
        var dev = NextField(ref line);
        int colon = dev.IndexOf(':');
        uint major = (uint)Hex(dev[..colon]);
        uint minor = (uint)Hex(dev[(colon + 1)..]);
        ulong inode = ulong.Parse(NextField(ref line), CultureInfo.InvariantCulture);
        string path = line.TrimStart(' ').ToString();
        return new MapsEntry(start, end, perms[0] == 'r', perms[1] == 'w', perms[2] == 'x', perms[3] == 's',
            offset, major, minor, inode, path);
    }

    public static List<MapsEntry> ParseMaps(string text)
    {
        var result = new List<MapsEntry>();
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            if (!line.IsEmpty)
                result.Add(ParseMapsLine(line));
        }
        return result;
    }

    public static ParsedStat ParseStat(ReadOnlySpan<char> text)
    {
        int open = text.IndexOf('(');
        int close = text.LastIndexOf(')');
        if (open < 0 || close < open)
            throw new FormatException("no comm field in stat");
        int pid = int.Parse(text[..open].Trim(), CultureInfo.InvariantCulture);
        var rest = text[(close + 1)..];
        // rest starts at field 3.
        Span<ulong> f = stackalloc ulong[53];
        char state = '?';
        int field = 3;
        foreach (var range in rest.Split(' '))
        {
            var token = rest[range];
            if (token.IsEmpty)
                continue;
            if (field == 3)
                state = token[0];
            else if (field < f.Length)
                f[field] = token[0] == '-' ? unchecked((ulong)long.Parse(token, CultureInfo.InvariantCulture)) : ulong.Parse(token, CultureInfo.InvariantCulture);
            field++;
        }
        if (field <= 51)
            throw new FormatException($"stat has {field - 1} fields, expected at least 51");
        return new ParsedStat(pid, state, (int)f[4], (int)f[5], (int)f[6], (long)f[20], f[22],
            f[26], f[27], f[28], f[45], f[46], f[47], f[48], f[49], f[50], f[51], (int)f[52])
        {
            Flags = (uint)f[9], Nice = (int)(long)f[19], RtPriority = (int)f[40], Policy = (int)f[41],
        };
    }

    public static ProcStatus ParseStatus(string text)
    {
        string name = "";
        char state = '?';
        int tgid = 0, ppid = 0, tracer = 0, threads = 0, seccomp = 0;
        uint umask = 18; // 022
        uint[] uids = [], gids = [], groups = [];
        ulong sigPnd = 0, shdPnd = 0, sigBlk = 0, sigIgn = 0, sigCgt = 0;
        int[] nsPids = [], nsPgids = [], nsSids = [];
        byte[] cpus = [];
        var caps = new ulong[5];
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            int colon = line.IndexOf(':');
            if (colon < 0)
                continue;
            var key = line[..colon];
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "Name": name = value.ToString(); break;
                case "State": state = value.IsEmpty ? '?' : value[0]; break;
                case "Tgid": tgid = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "PPid": ppid = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "TracerPid": tracer = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "Threads": threads = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "Umask": umask = Convert.ToUInt32(value.ToString(), 8); break;
                case "Uid": uids = Numbers(value); break;
                case "Gid": gids = Numbers(value); break;
                case "Groups": groups = Numbers(value); break;
                case "SigPnd": sigPnd = Hex(value); break;
                case "ShdPnd": shdPnd = Hex(value); break;
                case "SigBlk": sigBlk = Hex(value); break;
                case "SigIgn": sigIgn = Hex(value); break;
                case "SigCgt": sigCgt = Hex(value); break;
                case "NSpid": nsPids = Array.ConvertAll(Numbers(value), v => (int)v); break;
                case "NSpgid": nsPgids = Array.ConvertAll(Numbers(value), v => (int)v); break;
                case "NSsid": nsSids = Array.ConvertAll(Numbers(value), v => (int)v); break;
                case "CapInh": caps[0] = Hex(value); break;
                case "CapPrm": caps[1] = Hex(value); break;
                case "CapEff": caps[2] = Hex(value); break;
                case "CapBnd": caps[3] = Hex(value); break;
                case "CapAmb": caps[4] = Hex(value); break;
                case "Seccomp": seccomp = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "Cpus_allowed": cpus = CpuMask(value); break;
            }
        }
        return new ProcStatus(name, state, tgid, ppid, tracer, uids, gids, groups, umask, threads, sigPnd, shdPnd, sigBlk, nsPids, caps, sigIgn, sigCgt, seccomp) { NsPgids = nsPgids, NsSids = nsSids, CpusAllowed = cpus };
    }

    /// <summary>
    /// A CPU mask as status shows it (hex, 32-bit groups separated by commas, the highest first) as
    /// sched_getaffinity gives it: bytes, the lowest CPUs first.
    /// </summary>
    private static byte[] CpuMask(ReadOnlySpan<char> value)
    {
        string hex = value.ToString().Replace(",", "", StringComparison.Ordinal);
        if (hex.Length % 2 == 1)
            hex = "0" + hex;
        var mask = Convert.FromHexString(hex);
        Array.Reverse(mask);
        return mask;
    }

    /// <summary>
    /// /proc/PID/limits: one line per resource in RLIMIT_* order after a header, the soft limit in
    /// columns 26-45 and the hard one in 47-66 ("unlimited" is RLIM_INFINITY).
    /// </summary>
    public static (ulong Soft, ulong Hard)[] ParseLimits(string text)
    {
        const int SoftAt = 26, HardAt = 47, Width = 20;
        var limits = new List<(ulong, ulong)>();
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            if (line.Length < HardAt + 1 || line.StartsWith("Limit "))
                continue;
            limits.Add((Limit(line.Slice(SoftAt, Width)), Limit(line[HardAt..Math.Min(line.Length, HardAt + Width)])));
        }
        return [.. limits];

        static ulong Limit(ReadOnlySpan<char> field)
        {
            field = field.Trim();
            return field.SequenceEqual("unlimited") ? ulong.MaxValue : ulong.Parse(field, CultureInfo.InvariantCulture);
        }
    }

    public static FdInfo ParseFdInfo(string text)
    {
        long pos = 0;
        uint flags = 0;
        int mnt = 0;
        List<FdLock>? locks = null;
        foreach (var line in text.AsSpan().EnumerateLines())
        {
            int colon = line.IndexOf(':');
            if (colon < 0)
                continue;
            var key = line[..colon];
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "pos": pos = long.Parse(value, CultureInfo.InvariantCulture); break;
                case "flags": flags = Convert.ToUInt32(value.ToString(), 8); break;
                case "mnt_id": mnt = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "lock": (locks ??= []).Add(ParseLock(value.ToString())); break;
            }
        }
        return new FdInfo(pos, flags, mnt) { Locks = locks ?? [] };
    }

    /// <summary>"1: POSIX  ADVISORY  WRITE 31385 fe:00:11657249 20 29" (the number before the colon is only a counter).</summary>
    private static FdLock ParseLock(string line)
    {
        var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length != 8)
            throw new FormatException($"fdinfo lock line \"{line}\" does not have 8 fields");
        var id = f[5].Split(':');
        if (id.Length != 3)
            throw new FormatException($"fdinfo lock line \"{line}\" has no device:inode");
        return new FdLock(f[1], f[2], f[3], int.Parse(f[4], CultureInfo.InvariantCulture), $"{id[0]}:{id[1]}",
            ulong.Parse(id[2], CultureInfo.InvariantCulture), long.Parse(f[6], CultureInfo.InvariantCulture),
            f[7] == "EOF" ? null : long.Parse(f[7], CultureInfo.InvariantCulture));
    }

    private static uint[] Numbers(ReadOnlySpan<char> value)
    {
        var list = new List<uint>();
        foreach (var range in value.SplitAny(" \t"))
        {
            var token = value[range];
            if (!token.IsEmpty)
                list.Add(uint.Parse(token, CultureInfo.InvariantCulture));
        }
        return [.. list];
    }

    private static ReadOnlySpan<char> NextField(ref ReadOnlySpan<char> line)
    {
        line = line.TrimStart(' ');
        int space = line.IndexOf(' ');
        var field = space < 0 ? line : line[..space];
        line = space < 0 ? [] : line[space..];
        return field;
    }

    private static ulong Hex(ReadOnlySpan<char> s) => ulong.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
