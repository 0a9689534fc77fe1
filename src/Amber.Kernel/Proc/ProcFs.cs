using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Amber.Native;

namespace Amber.Kernel.Proc;

/// <summary>Reads /proc for one process. Processes vanish at any time: readers throw
/// <see cref="TargetGoneException"/> when /proc/PID is gone.</summary>
public static class ProcFs
{
    public static string PidDir(int pid) => $"/proc/{pid}";

    public static bool Exists(int pid) => Directory.Exists(PidDir(pid));

    public static List<MapsEntry> ReadMaps(int pid) => ProcParsers.ParseMaps(ReadText(pid, "maps"));

    public static ParsedStat ReadStat(int pid) => ProcParsers.ParseStat(ReadText(pid, "stat"));

    public static ProcStatus ReadStatus(int pid) => ProcParsers.ParseStatus(ReadText(pid, "status"));

    /// <summary>One thread's stat: its own state and flags (one thread may be exiting while the others run).</summary>
    public static ParsedStat ReadThreadStat(int pid, int tid) => ProcParsers.ParseStat(ReadText(pid, $"task/{tid}/stat"));

    /// <summary>One thread's status: its own pending signals and mask (SigPnd, SigBlk) are per thread.</summary>
    public static ProcStatus ReadThreadStatus(int pid, int tid) => ProcParsers.ParseStatus(ReadText(pid, $"task/{tid}/status"));

    public static bool TryReadStatus(int pid, out ProcStatus? status)
    {
        try
        {
            status = ReadStatus(pid);
            return true;
        }
        catch (TargetGoneException)
        {
            status = null;
            return false;
        }
    }

    /// <summary>Soft and hard limit of every resource, in RLIMIT_* order (readable without CAP_SYS_RESOURCE, unlike prlimit).</summary>
    public static (ulong Soft, ulong Hard)[] ReadLimits(int pid) => ProcParsers.ParseLimits(ReadText(pid, "limits"));

    public static string ReadComm(int pid, int tid) => ReadText(pid, $"task/{tid}/comm").TrimEnd('\n');

    public static byte[] ReadAuxv(int pid) => ReadBytes(pid, "auxv");

    public static string ReadExe(int pid) => ReadLink(pid, "exe");

    public static string ReadCwd(int pid) => ReadLink(pid, "cwd");

    /// <summary>
    /// <paramref name="path"/> (absolute) as process <paramref name="pid"/> sees it: through its root, in
    /// its mount namespace, which may not be amber's (a tmpfs or bind mount of its own).
    /// </summary>
    public static string InView(int pid, string path) => $"/proc/{pid}/root{path}";

    public static string ReadRoot(int pid) => ReadLink(pid, "root");

    /// <summary>The process's cgroup v2 path ("0::/a/b" of /proc/PID/cgroup: "/a/b"), "" if it has none there (v1 only).</summary>
    public static string ReadCgroup(int pid) =>
        ReadText(pid, "cgroup").Split('\n').FirstOrDefault(l => l.StartsWith("0::", StringComparison.Ordinal))?[3..] ?? "";

    public static FdInfo ReadFdInfo(int pid, int fd) => ProcParsers.ParseFdInfo(ReadText(pid, $"fdinfo/{fd}"));

    public static string ReadFdInfoText(int pid, int fd) => ReadText(pid, $"fdinfo/{fd}");

    public static string ReadFdLink(int pid, int fd) => ReadLink(pid, $"fd/{fd}");

    /// <summary>The process's oom_score_adj (-1000..1000).</summary>
    public static int ReadOomScoreAdjust(int pid) => int.Parse(ReadText(pid, "oom_score_adj").Trim(), CultureInfo.InvariantCulture);

    /// <summary>Sets the process's oom_score_adj; lowering it below what it was given needs CAP_SYS_RESOURCE (an <see cref="UnauthorizedAccessException"/>).</summary>
    public static void WriteOomScoreAdjust(int pid, int value) =>
        File.WriteAllText($"/proc/{pid}/oom_score_adj", value.ToString(CultureInfo.InvariantCulture));

    public static ulong ReadPersonality(int pid) =>
        ulong.Parse(ReadText(pid, "personality").Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    /// <summary>The fds open in the process, ascending.</summary>
    public static List<int> ListFds(int pid)
    {
        var fds = new List<int>();
        foreach (var entry in Enumerate(pid, "fd"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int fd))
                fds.Add(fd);
        }
        fds.Sort();
        return fds;
    }

    /// <summary>Every process now, ascending.</summary>
    public static List<int> ListProcesses()
    {
        var pids = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                pids.Add(pid);
        }
        pids.Sort();
        return pids;
    }

    /// <summary>
    /// A process other than <paramref name="excluded"/> with an fd whose link reads <paramref name="link"/>
    /// ("pipe:[123]") and whose open flags <paramref name="wanted"/> accepts, as (pid, fd); null if none.
    /// Walks every process's fds: for the rare question of who outside holds an object.
    /// </summary>
    public static (int Pid, int Fd)? FindFdHolder(string link, Func<uint, bool> wanted, IReadOnlySet<int> excluded)
    {
        foreach (int pid in ListProcesses())
        {
            if (excluded.Contains(pid) || pid == Environment.ProcessId)
                continue;
            List<int> fds;
            try
            {
                fds = ListFds(pid);
            }
            catch (Exception e) when (e is TargetGoneException or IOException or UnauthorizedAccessException)
            {
                continue; // gone meanwhile
            }
            // An fd at a time: a busy process closing some fd meanwhile must not hide the one sought.
            foreach (int fd in fds)
            {
                try
                {
                    if (ReadFdLink(pid, fd) == link && wanted(ReadFdInfo(pid, fd).Flags))
                        return (pid, fd);
                }
                catch (Exception e) when (e is TargetGoneException or IOException or UnauthorizedAccessException)
                {
                    // closed between the listing and the reading
                }
            }
        }
        return null;
    }

    /// <summary>The thread ids, leader first.</summary>
    public static List<int> ListThreads(int pid)
    {
        var tids = new List<int>();
        foreach (var entry in Enumerate(pid, "task"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out int tid))
                tids.Add(tid);
        }
        tids.Sort((a, b) => a == pid ? -1 : b == pid ? 1 : a.CompareTo(b));
        return tids;
    }

    /// <summary>Children of every thread of the process (/proc/PID/task/TID/children).</summary>
    public static List<int> ListChildren(int pid)
    {
        var children = new List<int>();
        foreach (int tid in ListThreads(pid))
        {
            string text;
            try { text = File.ReadAllText($"/proc/{pid}/task/{tid}/children"); }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException || e is IOException && e.Message.StartsWith("No such process", StringComparison.Ordinal)) { continue; }
            foreach (var token in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                children.Add(int.Parse(token, CultureInfo.InvariantCulture));
        }
        return children;
    }

    /// <summary>
    /// A /proc file as text, read into a pooled buffer: a checkpoint reads one fdinfo per fd under the
    /// freeze, and File.ReadAllText's stream and reader buffers cost more than the read itself.
    /// </summary>
    /// <summary>
    /// A /proc file, whole: open, read, close and nothing else (a FileStream or SafeFileHandle adds
    /// fstat, flock and one more read, which a checkpoint pays for every fd under the freeze).
    /// </summary>
    private static unsafe string ReadText(int pid, string name)
    {
        string path = $"/proc/{pid}/{name}";
        var pathBytes = NativeString.Utf8Z(path);
        int fd;
        fixed (byte* p = pathBytes)
            fd = Interop.Open(p, Interop.O_RDONLY | Interop.O_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Errnos.ENOENT or Errnos.ESRCH || !Exists(pid))
                throw new TargetGoneException(pid);
            if (errno is Errnos.EACCES or Errnos.EPERM)
                throw new UnauthorizedAccessException($"{path}: {Marshal.GetPInvokeErrorMessage(errno)}");
            throw new IOException($"{path}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        using var handle = new SafeFdHandle(fd);
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            int length = 0;
            while (true)
            {
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                nint n;
                fixed (byte* b = buffer)
                    n = Interop.Read(fd, b + length, (nuint)(buffer.Length - length));
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Errnos.EINTR)
                        continue;
                    if (errno == Errnos.ESRCH || !Exists(pid))
                        throw new TargetGoneException(pid);
                    throw new IOException($"{path}: {Marshal.GetPInvokeErrorMessage(errno)}");
                }
                if (n == 0)
                    return Encoding.UTF8.GetString(buffer, 0, length);
                length += (int)n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static byte[] ReadBytes(int pid, string name)
    {
        try { return File.ReadAllBytes($"/proc/{pid}/{name}"); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException || (e is IOException && !Exists(pid)))
        { throw new TargetGoneException(pid); }
    }

    private static string ReadLink(int pid, string name)
    {
        try
        {
            return new FileInfo($"/proc/{pid}/{name}").LinkTarget ?? throw new TargetGoneException(pid);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new TargetGoneException(pid); }
    }

    private static string[] Enumerate(int pid, string dir)
    {
        try { return Directory.GetFileSystemEntries($"/proc/{pid}/{dir}"); }
        // A process exiting while its directory is read gives ESRCH ("No such process") rather than ENOENT.
        catch (Exception e) when (e is DirectoryNotFoundException || (e is IOException && !Exists(pid)) || e.Message.StartsWith("No such process", StringComparison.Ordinal))
        { throw new TargetGoneException(pid); }
    }
}
