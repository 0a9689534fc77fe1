using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Amber.Native.Tests;

/// <summary>Which headers a generated probe is built against.</summary>
internal enum HeaderSet
{
    /// <summary>glibc's headers (sys/*.h, signal.h, spawn.h...), plus the uapi headers glibc has no copy of.</summary>
    Glibc,

    /// <summary>Only the kernel's uapi headers (linux/*.h, asm/*.h): the ABI as the kernel defines it.</summary>
    Kernel,
}

/// <summary>
/// A C# interop struct and the C type it mirrors in each header set (null: that set has no such type).
/// C field names default to the C# field names; the maps give the exceptions.
/// </summary>
internal sealed record StructSpec(Type Type, string? GlibcType, string? KernelType)
{
    public IReadOnlyDictionary<string, string> GlibcFields { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> KernelFields { get; init; } = new Dictionary<string, string>();

    public string Name => Type.Name;

    public string? CType(HeaderSet set) => set == HeaderSet.Glibc ? GlibcType : KernelType;

    public string CField(HeaderSet set, string field) =>
        (set == HeaderSet.Glibc ? GlibcFields : KernelFields).TryGetValue(field, out var c) ? c : field;

    public FieldInfo[] Fields => Type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
}

/// <summary>
/// A C# constant (a const field, or a computed static property such as an ioctl number) and its C
/// counterpart: an expression compiled against glibc's headers and/or a macro of the kernel headers.
/// </summary>
internal sealed record ConstantSpec(string Name, long? Value, string? GlibcExpression, string? KernelMacro, string? KernelExpression);

/// <summary>
/// Everything the layout tests compare between Amber.Native and C, and the C probes that print the C side.
/// </summary>
internal static class NativeAbi
{
    public static Assembly Assembly => typeof(Interop).Assembly;

    /// <summary>Every interop struct of Amber.Native, with its C counterparts.</summary>
    public static readonly StructSpec[] Structs =
    [
        new(typeof(UserRegs), "struct user_regs_struct", null), // sys/user.h only; the kernel's pt_regs is not the same type
        new(typeof(Iovec), "struct iovec", "struct iovec"),
        new(typeof(CloneArgs), "struct clone_args", "struct clone_args"),
        new(typeof(PrctlMmMap), "struct prctl_mm_map", "struct prctl_mm_map"),
        // glibc's struct sigaction is a different (1 KiB sigset) type; asm/signal.h has the kernel's.
        new(typeof(KernelSigaction), null, "struct sigaction")
        {
            KernelFields = new Dictionary<string, string>
            {
                ["handler"] = "sa_handler", ["flags"] = "sa_flags", ["restorer"] = "sa_restorer", ["mask"] = "sa_mask",
            },
        },
        new(typeof(StackT), "stack_t", "stack_t"),
        new(typeof(RseqConfiguration), "struct __ptrace_rseq_configuration", "struct ptrace_rseq_configuration"),
        new(typeof(PeekSiginfoArgs), "struct __ptrace_peeksiginfo_args", "struct ptrace_peeksiginfo_args"),
        new(typeof(Stat), "struct stat", "struct stat")
        {
            GlibcFields = new Dictionary<string, string>
            {
                ["pad0"] = "__pad0",
                ["st_atime"] = "st_atim.tv_sec", ["st_atime_nsec"] = "st_atim.tv_nsec",
                ["st_mtime"] = "st_mtim.tv_sec", ["st_mtime_nsec"] = "st_mtim.tv_nsec",
                ["st_ctime"] = "st_ctim.tv_sec", ["st_ctime_nsec"] = "st_ctim.tv_nsec",
                ["reserved0"] = "__glibc_reserved[0]", ["reserved1"] = "__glibc_reserved[1]", ["reserved2"] = "__glibc_reserved[2]",
            },
            KernelFields = new Dictionary<string, string>
            {
                ["pad0"] = "__pad0",
                ["reserved0"] = "__unused[0]", ["reserved1"] = "__unused[1]", ["reserved2"] = "__unused[2]",
            },
        },
        new(typeof(Statx), "struct statx", "struct statx")
        {
            // glibc's sys/stat.h uses linux/stat.h's struct statx when the uapi headers are installed.
            GlibcFields = StatxFields,
            KernelFields = StatxFields,
        },
        new(typeof(FileCloneRange), "struct file_clone_range", "struct file_clone_range"),
        new(typeof(PageRegion), "struct page_region", "struct page_region"),
        new(typeof(PmScanArg), "struct pm_scan_arg", "struct pm_scan_arg"),
        new(typeof(UffdioApi), "struct uffdio_api", "struct uffdio_api"),
        new(typeof(UffdioRegister), "struct uffdio_register", "struct uffdio_register")
        {
            GlibcFields = new Dictionary<string, string> { ["start"] = "range.start", ["len"] = "range.len" },
            KernelFields = new Dictionary<string, string> { ["start"] = "range.start", ["len"] = "range.len" },
        },
        new(typeof(UffdioCopy), "struct uffdio_copy", "struct uffdio_copy"),
        new(typeof(UffdioRange), "struct uffdio_range", "struct uffdio_range"),
        new(typeof(UffdioZeropage), "struct uffdio_zeropage", "struct uffdio_zeropage")
        {
            GlibcFields = new Dictionary<string, string> { ["start"] = "range.start", ["len"] = "range.len" },
            KernelFields = new Dictionary<string, string> { ["start"] = "range.start", ["len"] = "range.len" },
        },
        new(typeof(UffdMsg), "struct uffd_msg", "struct uffd_msg")
        {
            GlibcFields = UffdMsgFields,
            KernelFields = UffdMsgFields,
        },
        new(typeof(Msghdr), "struct msghdr", null), // the kernel's user_msghdr is not in the uapi headers
        new(typeof(Pollfd), "struct pollfd", "struct pollfd"),
        new(typeof(Timespec), "struct timespec", "struct __kernel_timespec"),
        new(typeof(TcpRepairWindow), "struct tcp_repair_window", "struct tcp_repair_window"),
        new(typeof(TcpRepairOpt), "struct tcp_repair_opt", "struct tcp_repair_opt"),
    ];

    /// <summary>struct uffd_msg's C names: the arguments are its union's, seen through remap {from, to, len}.</summary>
    private static Dictionary<string, string> UffdMsgFields => new()
    {
        ["evt"] = "event", ["arg0"] = "arg.remap.from", ["arg1"] = "arg.remap.to", ["arg2"] = "arg.remap.len",
    };

    /// <summary>struct statx's C names for the fields Statx flattens or renames (the timestamps are nested structs).</summary>
    private static Dictionary<string, string> StatxFields => new()
    {
        ["spare0"] = "__spare0[0]",
        ["stx_atime_sec"] = "stx_atime.tv_sec", ["stx_atime_nsec"] = "stx_atime.tv_nsec", ["stx_atime_reserved"] = "stx_atime.__reserved",
        ["stx_btime_sec"] = "stx_btime.tv_sec", ["stx_btime_nsec"] = "stx_btime.tv_nsec", ["stx_btime_reserved"] = "stx_btime.__reserved",
        ["stx_ctime_sec"] = "stx_ctime.tv_sec", ["stx_ctime_nsec"] = "stx_ctime.tv_nsec", ["stx_ctime_reserved"] = "stx_ctime.__reserved",
        ["stx_mtime_sec"] = "stx_mtime.tv_sec", ["stx_mtime_nsec"] = "stx_mtime.tv_nsec", ["stx_mtime_reserved"] = "stx_mtime.__reserved",
    };

    /// <summary>
    /// C# constants with no C macro of the same meaning, and why. Everything else declared in
    /// Interop, SyscallNumbers or a struct is compared with C.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> Unchecked = new Dictionary<string, string>
    {
        ["Interop.Libc"] = "the library name for LibraryImport, not an ABI value",
        ["Interop.PosixSpawnFileActionsSize"] = "a buffer size: checked as >= sizeof(posix_spawn_file_actions_t) by PosixSpawnBuffersAreLargeEnough",
        ["Interop.PosixSpawnAttrSize"] = "a buffer size: checked as >= sizeof(posix_spawnattr_t) by PosixSpawnBuffersAreLargeEnough",
        ["Interop.TcpInfoWscaleOffset"] = "the byte of two bit-fields (tcpi_snd_wscale, tcpi_rcv_wscale), which offsetof cannot name",
    };

    /// <summary>Constants whose C spelling differs from the C# name: (glibc expression, kernel macro, kernel expression).</summary>
    private static readonly Dictionary<string, (string? Glibc, string? KernelMacro, string? KernelExpression)> Renamed = new()
    {
        // glibc's NSIG and _NSIG are 65 (one past the highest signal); Amber's NSIG is the number of
        // signals, the kernel's _NSIG (64). The x86 uapi asm/signal.h has only the libc-compat NSIG 32.
        ["Interop.NSIG"] = ("__SIGRTMAX", null, null),
        ["Interop.WALL"] = ("__WALL", "__WALL", "__WALL"),
        ["PeekSiginfoArgs.SiginfoSize"] = ("sizeof(siginfo_t)", "SI_MAX_SIZE", "SI_MAX_SIZE"),
        ["Interop.ShmidDsSize"] = ("sizeof(struct shmid_ds)", null, null),
        ["Interop.MsghdrSize"] = ("sizeof(struct msghdr)", null, null),
        ["Interop.SemidDsSize"] = ("sizeof(struct semid_ds)", null, null),
        ["Interop.MsqidDsSize"] = ("sizeof(struct msqid_ds)", null, null),
        ["Interop.IfreqSize"] = ("sizeof(struct ifreq)", null, null),
        ["Interop.EpollEventSize"] = ("sizeof(struct epoll_event)", null, null),
        ["Interop.TcpInfoStateOffset"] = ("offsetof(struct tcp_info, tcpi_state)", null, null),
        ["Interop.TcpInfoOptionsOffset"] = ("offsetof(struct tcp_info, tcpi_options)", null, null),
    };

    public static StructSpec Struct(string name) => Structs.Single(s => s.Name == name);

    /// <summary>The struct types of Amber.Native (value types in namespace Amber.Native, not enums).</summary>
    public static IEnumerable<Type> NativeStructTypes() =>
        Assembly.GetTypes().Where(t =>
            t.IsValueType && !t.IsEnum && t.Namespace == "Amber.Native"
            && !t.Name.Contains('<', StringComparison.Ordinal) && t.GetCustomAttribute<CompilerGeneratedAttribute>() is null);

    /// <summary>Every integer constant of Interop and of the interop structs (except the structs' Size), with its C spelling.</summary>
    public static IReadOnlyList<ConstantSpec> Constants { get; } = FindConstants();

    /// <summary>SyscallNumbers, C# name → number; the C names are SYS_x / __NR_x with x the snake_case name.</summary>
    public static IReadOnlyList<(string Name, long Number, string CName)> Syscalls { get; } =
    [
        .. typeof(Interop).Assembly.GetType("Amber.Native.SyscallNumbers", throwOnError: true)!
            .GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic)
            .Where(f => f.IsLiteral)
            .Select(f => (f.Name, Convert.ToInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture), SnakeCase(f.Name))),
    ];

    /// <summary>What the probe compiled against glibc's headers printed.</summary>
    public static IReadOnlyDictionary<string, long> GlibcProbe => LazyGlibcProbe.Value;

    /// <summary>What the probe compiled against the kernel's uapi headers only printed.</summary>
    public static IReadOnlyDictionary<string, long> KernelProbe => LazyKernelProbe.Value;

    public static IReadOnlyDictionary<string, long> Probe(HeaderSet set) => set == HeaderSet.Glibc ? GlibcProbe : KernelProbe;

    private static readonly Lazy<Dictionary<string, long>> LazyGlibcProbe = new(() => CProgram.CompileAndRunSource("abi_glibc", GenerateSource(HeaderSet.Glibc)));
    private static readonly Lazy<Dictionary<string, long>> LazyKernelProbe = new(() => CProgram.CompileAndRunSource("abi_kernel", GenerateSource(HeaderSet.Kernel)));

    public static int CSharpSize(Type t) =>
        (int)typeof(Unsafe).GetMethod(nameof(Unsafe.SizeOf))!.MakeGenericMethod(t).Invoke(null, null)!;

    public static int? SizeConstant(Type t) =>
        t.GetField("Size", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic) is { IsLiteral: true } f
            ? (int)f.GetRawConstantValue()!
            : null;

    public static string SnakeCase(string pascal)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            if (char.IsUpper(pascal[i]) && i > 0)
                sb.Append('_');
            sb.Append(char.ToLowerInvariant(pascal[i]));
        }
        return sb.ToString();
    }

    private static List<ConstantSpec> FindConstants()
    {
        var result = new List<ConstantSpec>();
        void Add(string owner, MemberInfo member, object? value)
        {
            string name = $"{owner}.{member.Name}";
            if (Unchecked.ContainsKey(name))
                return;
            long? v = value switch
            {
                ulong u => unchecked((long)u),
                byte or sbyte or short or ushort or int or uint or long => Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture),
                _ => null, // not an integer: the test fails on it until it is listed in Unchecked
            };
            var (glibc, kernelMacro, kernelExpr) = Renamed.TryGetValue(name, out var r) ? r : (member.Name, member.Name, member.Name);
            result.Add(new ConstantSpec(name, v, glibc, kernelMacro, kernelExpr));
        }

        const BindingFlags Statics = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        foreach (var f in typeof(Interop).GetFields(Statics).Where(f => f.IsLiteral))
            Add("Interop", f, f.GetRawConstantValue());
        // Computed values (ioctl request numbers): parameterless static properties of an integer type.
        foreach (var p in typeof(Interop).GetProperties(Statics).Where(p => p.GetIndexParameters().Length == 0 && IsInteger(p.PropertyType)))
            Add("Interop", p, p.GetValue(null));
        foreach (var s in Structs)
        {
            foreach (var f in s.Type.GetFields(Statics).Where(f => f.IsLiteral && f.Name != "Size"))
                Add(s.Name, f, f.GetRawConstantValue());
        }
        return result;
    }

    private static bool IsInteger(Type t) =>
        t == typeof(byte) || t == typeof(sbyte) || t == typeof(short) || t == typeof(ushort)
        || t == typeof(int) || t == typeof(uint) || t == typeof(long) || t == typeof(ulong);

    private const string GlibcIncludes = """
        #define _GNU_SOURCE
        #include <elf.h>
        #include <errno.h>
        #include <fcntl.h>
        #include <signal.h>
        #include <spawn.h>
        #include <stddef.h>
        #include <stdio.h>
        #include <sys/mman.h>
        #include <sys/resource.h>
        #include <sys/mount.h>
        #include <sys/prctl.h>
        #include <sys/ptrace.h>
        #include <sys/stat.h>
        #include <sys/syscall.h>
        #include <sys/uio.h>
        #include <sys/user.h>
        #include <sys/wait.h>
        #include <sys/socket.h>
        #include <sys/file.h>
        #include <sys/inotify.h>
        #include <sys/shm.h>
        #include <sys/sem.h>
        #include <sys/msg.h>
        #include <linux/netlink.h>
        #include <linux/sock_diag.h>
        #include <linux/unix_diag.h>
        #include <sys/ioctl.h>
        #include <termios.h>
        #include <sys/eventfd.h>
        #include <sys/epoll.h>
        #include <poll.h>
        #include <sys/timerfd.h>
        #include <net/if.h>
        #include <linux/if_ether.h>
        #ifndef PR_TIMER_CREATE_RESTORE_IDS /* uapi linux/prctl.h of 6.16; these headers are 6.1 */
        #define PR_TIMER_CREATE_RESTORE_IDS 77
        #endif
        #ifndef PR_SET_MDWE /* uapi linux/prctl.h of 6.3 */
        #define PR_SET_MDWE 65
        #define PR_GET_MDWE 66
        #endif
        #ifndef TFD_IOC_SET_TICKS /* uapi linux/timerfd.h, which clashes with glibc fcntl.h here */
        #define TFD_IOC_SET_TICKS _IOW(0x54, 0, __u64)
        #endif
        #include <netinet/in.h>
        #include <netinet/tcp.h>
        #include <linux/sockios.h>
        /* No glibc header has these: the uapi ones are used as-is. */
        #include <linux/fs.h>
        #include <linux/ioprio.h>
        #include <linux/kcmp.h>
        #include <linux/sched.h>
        #include <linux/userfaultfd.h>
        """;

    // Nothing from glibc here (that would hide the uapi definitions: linux/stat.h, for one, drops
    // S_IF* when it sees __GLIBC__); offsetof comes from gcc's own stddef.h.
    private const string KernelIncludes = """
        #include <linux/types.h>
        #include <linux/elf.h>
        #include <linux/errno.h>
        #include <linux/fcntl.h>
        #include <linux/fs.h>
        #include <linux/memfd.h>
        #include <linux/mman.h>
        #include <linux/poll.h>
        #include <linux/prctl.h>
        #ifndef PR_TIMER_CREATE_RESTORE_IDS /* uapi 6.16; these headers are 6.1 */
        #define PR_TIMER_CREATE_RESTORE_IDS 77
        #endif
        #ifndef PR_SET_MDWE /* uapi 6.3 */
        #define PR_SET_MDWE 65
        #define PR_GET_MDWE 66
        #endif
        #include <linux/ptrace.h>
        #include <linux/sched.h>
        #include <linux/signal.h>
        #include <linux/stat.h>
        #include <linux/uio.h>
        #include <linux/userfaultfd.h>
        #include <linux/wait.h>
        #include <linux/tcp.h>
        #include <linux/sockios.h>
        #include <asm/ioctls.h>
        #include <asm/termbits.h>
        #include <linux/tty.h>
        #include <asm/siginfo.h>
        #include <asm/stat.h>
        #include <asm/unistd.h>
        #include <stddef.h>
        extern int printf(const char *format, ...);
        """;

    /// <summary>
    /// Items of kernels newer than the installed headers (linux-libc-dev 6.1, glibc 2.36), copied from
    /// the upstream uapi headers. Each is defined only if the headers lack it, and then marks itself
    /// with AMBER_HAND_*, which the probe prints as "hand:NAME 1".
    /// </summary>
    private const string Fallbacks = """
        /* --- Hand definitions, used only where the installed headers lack the item. --- */

        /* linux/fs.h, 6.7 (PAGE_IS_SOFT_DIRTY: 6.8): PAGEMAP_SCAN and its structs. */
        #ifndef PAGEMAP_SCAN
        #define AMBER_HAND_PAGEMAP_SCAN 1
        struct page_region { __u64 start, end, categories; };
        struct pm_scan_arg {
            __u64 size, flags, start, end, walk_end, vec, vec_len, max_pages, category_inverted,
                category_mask, category_anyof_mask, return_mask;
        };
        #define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
        #define PAGE_IS_WPALLOWED (1 << 0)
        #define PAGE_IS_WRITTEN (1 << 1)
        #define PAGE_IS_FILE (1 << 2)
        #define PAGE_IS_PRESENT (1 << 3)
        #define PAGE_IS_SWAPPED (1 << 4)
        #define PAGE_IS_PFNZERO (1 << 5)
        #define PAGE_IS_HUGE (1 << 6)
        #define PAGE_IS_SOFT_DIRTY (1 << 7)
        #define PM_SCAN_WP_MATCHING (1 << 0)
        #define PM_SCAN_CHECK_WPASYNC (1 << 1)
        #endif

        /* linux/userfaultfd.h: UFFD_FEATURE_WP_UNPOPULATED is 6.4, UFFD_FEATURE_WP_ASYNC 6.7. */
        #ifndef UFFD_FEATURE_WP_UNPOPULATED
        #define AMBER_HAND_UFFD_FEATURE_WP_UNPOPULATED 1
        #define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
        #endif
        #ifndef UFFD_FEATURE_WP_ASYNC
        #define AMBER_HAND_UFFD_FEATURE_WP_ASYNC 1
        #define UFFD_FEATURE_WP_ASYNC (1 << 15)
        #endif

        /* linux/ptrace.h 5.13, glibc 2.35 (glibc 2.36 has it; kept for older build machines). */
        #ifndef PTRACE_GET_RSEQ_CONFIGURATION
        #define AMBER_HAND_PTRACE_GET_RSEQ_CONFIGURATION 1
        #define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
        struct __ptrace_rseq_configuration { __UINT64_TYPE__ rseq_abi_pointer; __UINT32_TYPE__ rseq_abi_size, signature, flags, pad; };
        #endif

        /* MADV_POPULATE_WRITE: linux 5.14, glibc 2.35. */
        #ifndef MADV_POPULATE_WRITE
        #define AMBER_HAND_MADV_POPULATE_WRITE 1
        #define MADV_POPULATE_WRITE 23
        #endif

        /* linux/stat.h 6.8: statx's unique mount id. */
        #ifndef STATX_MNT_ID_UNIQUE
        #define AMBER_HAND_STATX_MNT_ID_UNIQUE 1
        #define STATX_MNT_ID_UNIQUE 0x00004000U
        #endif

        /* linux/fs.h 6.14: PAGEMAP_SCAN's guard page category. */
        #ifndef PAGE_IS_GUARD
        #define AMBER_HAND_PAGE_IS_GUARD 1
        #define PAGE_IS_GUARD (1 << 8)
        #endif

        /* asm-generic/mman-common.h: MAP_DROPPABLE 6.11, MADV_GUARD_INSTALL/REMOVE 6.13. */
        #ifndef MAP_DROPPABLE
        #define AMBER_HAND_MAP_DROPPABLE 1
        #define MAP_DROPPABLE 0x08
        #endif
        #ifndef MADV_GUARD_INSTALL
        #define AMBER_HAND_MADV_GUARD_INSTALL 1
        #define MADV_GUARD_INSTALL 102
        #define MADV_GUARD_REMOVE 103
        #endif

        /* asm/unistd_64.h 6.10: mseal. */
        #ifndef __NR_mseal
        #define AMBER_HAND_MSEAL 1
        #define __NR_mseal 462
        #endif
        #ifndef SYS_mseal
        #define SYS_mseal __NR_mseal
        #endif
        """;

    private static readonly string[] FallbackNames =
        ["PAGEMAP_SCAN", "UFFD_FEATURE_WP_UNPOPULATED", "UFFD_FEATURE_WP_ASYNC", "PTRACE_GET_RSEQ_CONFIGURATION", "MADV_POPULATE_WRITE",
         "STATX_MNT_ID_UNIQUE", "PAGE_IS_GUARD", "MAP_DROPPABLE", "MADV_GUARD_INSTALL", "MSEAL"];

    /// <summary>The probe: prints sizeof/offsetof/field sizes of every struct and the value of every constant.</summary>
    public static string GenerateSource(HeaderSet set)
    {
        bool glibc = set == HeaderSet.Glibc;
        var c = new StringBuilder();
        c.AppendLine($"/* Generated by Amber.Native.Tests ({set} headers). Output: \"<key> <signed decimal>\" per line. */");
        c.AppendLine(glibc ? GlibcIncludes : KernelIncludes);
        c.AppendLine();
        c.AppendLine(Fallbacks);
        c.AppendLine();
        c.AppendLine("#define P(key, value) printf(\"%s %lld\\n\", key, (long long)(value))");
        c.AppendLine("int main(void) {");
        foreach (var name in FallbackNames)
            c.AppendLine($"#ifdef AMBER_HAND_{name}\n    P(\"hand:{name}\", 1);\n#endif");

        foreach (var s in Structs)
        {
            if (s.CType(set) is not { } type)
                continue;
            c.AppendLine($"    P(\"sizeof:{s.Name}\", sizeof({type}));");
            foreach (var f in s.Fields)
            {
                string cf = s.CField(set, f.Name);
                c.AppendLine($"    P(\"offsetof:{s.Name}.{f.Name}\", offsetof({type}, {cf}));");
                c.AppendLine($"    P(\"fieldsize:{s.Name}.{f.Name}\", sizeof((({type} *)0)->{cf}));");
            }
        }

        foreach (var k in Constants)
        {
            if (glibc && k.GlibcExpression is { } e)
            {
                // No #ifdef: glibc declares many of these as enumerators, not macros. A name glibc
                // lacks is a compile error that names it.
                c.AppendLine($"    P(\"const:{k.Name}\", {e});");
            }
            else if (!glibc && k.KernelMacro is { } m)
            {
                c.AppendLine($"#ifdef {m}\n    P(\"const:{k.Name}\", {k.KernelExpression});\n#endif");
            }
        }

        foreach (var (name, _, cname) in Syscalls)
        {
            if (glibc)
                c.AppendLine($"    P(\"sys:{name}\", SYS_{cname});");
            else
                c.AppendLine($"#ifdef __NR_{cname}\n    P(\"sys:{name}\", __NR_{cname});\n#endif");
        }

        if (glibc)
        {
            c.AppendLine("    P(\"sizeof:posix_spawn_file_actions_t\", sizeof(posix_spawn_file_actions_t));");
            c.AppendLine("    P(\"sizeof:posix_spawnattr_t\", sizeof(posix_spawnattr_t));");
        }
        c.AppendLine("    return 0;");
        c.AppendLine("}");
        return c.ToString();
    }

    public static long OffsetOf(Type t, string field) => Marshal.OffsetOf(t, field).ToInt64();
}
