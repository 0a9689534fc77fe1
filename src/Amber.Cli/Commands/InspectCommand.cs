using System.CommandLine;
using Amber.Checkpoint;
using Amber.Checkpoint.Resources.Sockets;
using Amber.Image;
using Amber.Image.Schema;
using Google.Protobuf;

namespace Amber.Cli.Commands;

/// <summary>Shows what an image holds, for people (default) or programs (--json), like CRIU's crit.</summary>
public static class InspectCommand
{
    public static Command Create()
    {
        var dir = new Argument<string>("dir") { Description = "A checkpoint directory" };
        var json = new Option<bool>("--json") { Description = "Machine-readable output" };
        var key = KeyOptions.Key();
        var command = new Command("inspect", "Show what a checkpoint holds") { dir, json, key };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var reader = CheckpointReader.Open(parse.GetValue(dir)!, verifyPageFiles: false, trust: true, key: KeyOptions.Load(parse.GetValue(key))); // shown, never run
            reader.ThrowIfNoKey();
            var processes = reader.Manifest.Pids
                .Select(pid => reader.ReadMessage(ImageNames.Process(pid), ImageFileKind.Process, ProcessImage.Parser)).ToList();
            var storage = reader.Manifest.Storage ? reader.ReadMessage(ImageNames.Storage, ImageFileKind.Metadata, StorageImage.Parser) : null;
            var mounts = reader.Manifest.Namespaces?.Mount == true ? reader.ReadMessage(ImageNames.Mounts, ImageFileKind.Metadata, MountsImage.Parser) : null;
            if (parse.GetValue(json))
                WriteJson(reader.Manifest, processes, storage, mounts);
            else
            {
                WriteText(reader.Manifest, processes, mounts);
                if (storage is not null)
                    WriteStorage(storage);
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static void WriteJson(Manifest manifest, List<ProcessImage> processes, StorageImage? storage, MountsImage? mounts)
    {
        var formatter = new JsonFormatter(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));
        Console.Out.Write("{\"manifest\":");
        Console.Out.Write(formatter.Format(manifest));
        Console.Out.Write(",\"processes\":[");
        Console.Out.Write(string.Join(",", processes.Select(p => formatter.Format(p))));
        Console.Out.Write("]");
        if (storage is not null)
            Console.Out.Write($",\"storage\":{formatter.Format(storage)}");
        if (mounts is not null)
            Console.Out.Write($",\"mounts\":{formatter.Format(mounts)}");
        Console.Out.WriteLine("}");
    }

    /// <summary>"3 mounts of its own: proc on /proc, tmpfs on /x (2 files), bind of /a on /b".</summary>
    private static string Describe(MountsImage mounts) =>
        $"{mounts.Mounts.Count} mount{(mounts.Mounts.Count == 1 ? "" : "s")} of its own" + (mounts.Mounts.Count == 0 ? "" : ": " + string.Join(", ", mounts.Mounts.Select(m => m.Kind switch
        {
            MountImage.Types.Kind.Proc => $"proc on {m.Target}",
            MountImage.Types.Kind.Tmpfs => $"tmpfs on {m.Target} ({m.Files.Count} files, {m.Files.Sum(f => (long)f.Data.Length):N0} bytes)",
            _ => $"bind of {m.Source} on {m.Target}",
        })));

    private static void WriteStorage(StorageImage storage)
    {
        var o = Console.Out;
        foreach (var root in storage.Roots)
        {
            var files = root.Entries.Where(e => e.Kind == StorageKind.StorageFile).ToList();
            long blocks = files.Sum(f => f.Blocks.Sum(r => (long)r.Count));
            long kept = files.Sum(f => f.Blocks.Where(r => r.Source != 0).Sum(r => (long)r.Count));
            o.WriteLine($"storage {root.Path}: {root.Entries.Count} entries, {files.Count} files, {blocks} blocks ({blocks * ImageFormat.PageSize / 1048576.0:0.0} MiB{(kept > 0 ? $", {kept} kept in earlier checkpoints" : "")}){(root.Excluded.Count > 0 ? $"; not captured: {string.Join(", ", root.Excluded)}" : "")}");
            foreach (var e in root.Entries)
            {
                string what = e.Kind switch
                {
                    StorageKind.StorageDirectory => "dir ",
                    StorageKind.StorageSymlink => "link",
                    StorageKind.StorageFifo => "fifo",
                    _ => "file",
                };
                string detail = e.Kind switch
                {
                    StorageKind.StorageSymlink => $"-> {e.Target}",
                    StorageKind.StorageFile when e.HardLink != "" => $"hard link to {e.HardLink}",
                    StorageKind.StorageFile => $"{e.Size:N0} bytes in {e.Blocks.Count} runs",
                    _ => "",
                };
                o.WriteLine($"  {what} {Convert.ToString(e.Mode, 8),4} {e.Uid}:{e.Gid}  {(e.Path.Length == 0 ? "." : e.Path)}  {detail}");
            }
        }
    }

    private static void WriteText(Manifest manifest, List<ProcessImage> processes, MountsImage? mounts)
    {
        var o = Console.Out;
        o.WriteLine($"checkpoint  format {manifest.FormatVersion}, amber {manifest.AmberVersion}, kernel {manifest.KernelRelease}, {DateTimeOffset.FromUnixTimeMilliseconds(manifest.CreatedUnixMs):u}");
        if (manifest.Parent.Length > 0)
            o.WriteLine($"  incremental after {manifest.Parent}; unchanged pages kept in {string.Join(", ", manifest.Sources)}");
        else if (manifest.Merged)
            o.WriteLine("  full, made by a merge");
        if (manifest.RequiredFeatures.Count > 0)
            o.WriteLine($"  requires {string.Join(", ", manifest.RequiredFeatures)}");
        if (manifest.KeyId.Length > 0)
            o.WriteLine($"  encrypted (AES-256-GCM) with key {manifest.KeyId}");
        if (manifest.Namespaces is { } own)
            o.WriteLine($"  namespaces of its own:{(own.Uts ? $" uts (host name {own.Hostname}, domain name {own.Domainname})" : "")}{(own.Ipc ? " ipc" : "")}{(own.Net ? $" net (loopback {(own.LoopbackUp ? "up" : "down")})" : "")}{(own.Pid ? " pid (the PIDs shown are theirs in it)" : "")}{(mounts is null ? "" : $" mnt ({Describe(mounts)})")}");
        foreach (var link in manifest.Namespaces?.Links ?? [])
            o.WriteLine($"  interface {link.Name} ({link.Kind}, {link.Mac}, mtu {link.Mtu}, {(link.Up ? "up" : "down")}), "
                + (link.Kind == "macvlan" ? $"on the host's {link.Lower} in {link.Mode} mode" : $"its other end {link.Peer} on the host{(link.PeerMaster.Length > 0 ? $" in bridge {link.PeerMaster}" : "")}"));
        foreach (var a in manifest.Namespaces?.Addresses ?? [])
            o.WriteLine($"  address {a.Local}/{a.PrefixLength} on {a.Dev}");
        foreach (var r in manifest.Namespaces?.Routes ?? [])
            o.WriteLine($"  route {string.Join(' ', r.Arguments)}");
        if (manifest.Namespaces is { Nftables.Length: > 0 } tables)
            o.WriteLine($"  nftables: {string.Join(", ", tables.Nftables.Split('\n').Where(l => l.StartsWith("table ", StringComparison.Ordinal)).Select(l => l.TrimEnd(' ', '{')))}");
        if (manifest.Group.Length > 0)
            o.WriteLine($"  group {manifest.Group}: {manifest.TreeRoots.Count} tree(s), roots {string.Join(" ", manifest.TreeRoots)}{(manifest.Forest ? ", with a forest" : "")}");
        foreach (var f in manifest.Files)
            o.WriteLine($"  file {f.Name,-24} {f.Size,14:N0} bytes  xxh3 {f.Xxh3:x16}");
        foreach (var p in processes)
        {
            if (p.Zombie)
            {
                o.WriteLine($"process {p.Pid} '{p.Comm}'  zombie (exit status {p.ExitStatus})  parent {p.Ppid}");
                continue;
            }
            ulong pages = (ulong)p.Mm.Pages.Sum(r => (long)r.Count);
            ulong kept = (ulong)p.Mm.Pages.Where(r => r.Source != 0).Sum(r => (long)r.Count);
            o.WriteLine($"process {p.Pid} '{p.Comm}'  exe {p.ExePath}  parent {p.Ppid} pgid {p.Pgid} sid {p.Sid}");
            o.WriteLine($"  cwd {p.Cwd}  umask {Convert.ToString(p.Umask, 8)}  uids [{string.Join(",", p.Creds.Uids)}] gids [{string.Join(",", p.Creds.Gids)}]");
            foreach (var t in p.Threads)
            {
                var regs = Kernel.Ptrace.Registers.FromBytes(t.Regs.Span);
                o.WriteLine($"  thread {t.Tid} '{t.Comm}'  rip {regs.Rip:x} rsp {regs.Rsp:x} syscall {(long)regs.OrigRax} rax {(long)regs.Rax}  sigmask {t.Sigmask:x}  pending {t.Pending.Count}  xstate {t.Xstate.Length} B{(t.Rseq is null ? "" : $"  rseq {t.Rseq.Address:x}")}");
            }
            o.WriteLine($"  memory: {p.Mm.Vmas.Count} mappings, {pages} pages saved in {p.Mm.Pages.Count} runs ({pages * ImageFormat.PageSize / 1048576.0:0.0} MiB{(kept > 0 ? $", {kept} kept in earlier checkpoints" : "")}); brk {p.Mm.StartBrk:x}-{p.Mm.Brk:x}");
            foreach (var v in p.Mm.Vmas)
            {
                ulong saved = (ulong)p.Mm.Pages.Where(r => r.Address >= v.Start && r.Address < v.End).Sum(r => (long)r.Count);
                o.WriteLine($"    {v.Start:x12}-{v.End:x12} {Prot(v.Prot)}{(v.Shared ? 's' : 'p')} {v.Kind.ToString()[3..].ToLowerInvariant(),-11} {saved,8} pages  {v.Name}");
            }
            o.WriteLine($"  fds: {p.Fds.Count}");
            foreach (var f in p.Fds)
            {
                o.WriteLine($"    {f.Fd,4} {f.Kind.ToString()[2..].ToLowerInvariant(),-10} flags {Convert.ToString(f.Flags, 8),-7} offset {f.Offset,-10} {(f.CloseOnExec ? "cloexec " : "")}{f.Description}");
                if (f.Socket?.Tcp is { } tcp)
                    o.WriteLine($"         TCP {TcpConnections.Describe(f.Socket.LocalAddress)} -> {TcpConnections.Describe(f.Socket.PeerAddress)} {(Amber.Kernel.Net.TcpState)tcp.State}, send queue {tcp.SendQueue.Length} B ({tcp.NotSent} not sent), receive queue {tcp.ReceiveQueue.Length} B");
                foreach (var queued in f.Socket?.AcceptQueue ?? [])
                    o.WriteLine($"         TCP {TcpConnections.Describe(queued.LocalAddress)} -> {TcpConnections.Describe(queued.PeerAddress)} waiting to be accepted, receive queue {queued.Tcp.ReceiveQueue.Length} B{(queued.Tcp.RemoteFinReceived ? ", peer's FIN" : "")}");
                if (f.Socket is { } socket && UdpSockets.Describe(socket) is { } udp)
                    o.WriteLine($"         {udp}");
                if (f.Socket is { Family: Kernel.Files.SocketState.Netlink, LocalAddress.Length: >= 12 } netlink)
                    o.WriteLine($"         netlink protocol {netlink.Protocol}, port {Kernel.Files.SocketState.NetlinkAddress(netlink.LocalAddress.Span).Port}, groups "
                        + $"[{string.Join(" ", Kernel.Files.SocketState.NetlinkGroupNumbers(netlink.NetlinkGroups))}]"
                        + $"{(netlink.PeerAddress.IsEmpty ? "" : ", connected")}");
            }
            foreach (var pty in p.Ptys)
                o.WriteLine(DescribePty(pty));
            o.WriteLine($"  signal handlers: {string.Join(" ", p.Sigactions.Select(a => a.Signal))}; pending (process-wide): {p.SharedPending.Count}");
        }
    }

    /// <summary>One line for a pseudo-terminal the process makes: its slave, size, mode, session and what waits in it.</summary>
    private static string DescribePty(PtyImage pty)
    {
        var ws = pty.WindowSize.Span;
        var termios = pty.Termios.Span;
        string size = ws.Length == 8 ? $"{BitConverter.ToUInt16(ws)}x{BitConverter.ToUInt16(ws[2..])}" : "?";
        string mode = termios.Length == Kernel.Files.PtyMaster.TermiosSize && Kernel.Files.PtyMaster.Canonical(termios) ? "canonical" : "non-canonical";
        return $"  makes pseudo-terminal {pty.SlaveDirectory}/{pty.Index} ({pty.MasterPath}): {size}, {mode}"
            + $"{(pty.Session != 0 ? $", controls session {pty.Session} (foreground group {pty.ForegroundGroup})" : "")}{(pty.PacketMode ? ", packet mode" : "")}{(pty.Locked ? ", locked" : "")}"
            + $"{(pty.SlaveClosed ? ", slave closed" : "")}; {pty.ToMaster.Length} B for the master, {pty.ToSlave.Length} B for the slave";
    }

    private static string Prot(uint prot) =>
        $"{((prot & 1) != 0 ? 'r' : '-')}{((prot & 2) != 0 ? 'w' : '-')}{((prot & 4) != 0 ? 'x' : '-')}";
}
