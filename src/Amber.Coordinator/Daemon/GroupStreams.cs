using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Image;
using Amber.Kernel;
using Amber.Kernel.Proc;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// A group moved through a file or a pipe (amber migrate --to-file, amber receive), e.g. over ssh:
/// the group's settings, then the image store's stream form of its checkpoint and every one it
/// needs (<see cref="CheckpointStreamWriter"/>). The stream is read and written on an fd of the
/// requesting CLI (its stdin or stdout, or a file it opened with its own rights), reopened here
/// through /proc: this coordinator never opens a path a requester names.
/// <para>
/// Out: the group is frozen and checkpointed, the stream written and flushed, and only then does
/// the group end here; if the stream cannot be written it runs on as if nothing happened. Its
/// checkpoints stay here (nothing sent through a pipe is known to have arrived).
/// In: the group is made here with the stream's settings and no process, its checkpoints
/// received (each checked against its manifest before it is committed), and restored if asked; a
/// stream cut off or damaged leaves nothing of the group here.
/// </para>
/// </summary>
public sealed class GroupStreams(NodeServices services)
{
    private static ReadOnlySpan<byte> Magic => "AMBRGRP1"u8;
    private const int MaxSettingsBytes = 4 << 20;

    /// <summary>amber migrate --to-file: the group (whose Busy the caller holds) written to fd <paramref name="fd"/> of the requester, and ended here.</summary>
    public ControlResponse ToFile(GroupRuntime group, int fd, Requester who)
    {
        string name = group.Config.Name;
        if (NodeServices.CannotMove(group, withKey: false) is { } cannot)
            return ControlResponse.Failure(cannot);
        if (OpenRequesterFd(who, fd, write: true, out string? problem) is not { } output)
            return ControlResponse.Failure($"cannot write group {name}'s stream: {problem}");
        using (output)
        {
            string? failure = null;
            long bytes = 0;
            List<string> sent = [];
            var response = services.CheckpointAndHandOver(group, full: false, last =>
            {
                try
                {
                    var chain = group.Store.Chain(last.Id, sealedAt: last.Path);
                    WriteSettings(output, group.Config);
                    var writer = CheckpointStreamWriter.Begin(output);
                    foreach (var checkpoint in chain)
                        writer.Write(checkpoint.Path, name: checkpoint.Id);
                    writer.End();
                    if (output.CanSeek)
                        output.Flush(flushToDisk: true);
                    (bytes, sent) = (writer.BytesWritten, [.. chain.Select(c => c.Id)]);
                    return null; // all of it written: it may end here
                }
                catch (Exception e) when (e is IOException or ImageFormatException or ImageStoreException)
                {
                    failure = e.Message;
                    return $"its stream could not be written ({e.Message})";
                }
            });
            if (!response.Ok || !response.Ended)
            {
                string why = failure ?? (response.Ok ? string.Join("; ", response.Stderr) : $"its checkpoint failed: {response.Error}");
                return ControlResponse.Failure($"group {name} was not moved: {why}; it runs on here");
            }
            string summary = string.Create(CultureInfo.InvariantCulture, $"{string.Join(", ", sent)}, {bytes / 1048576.0:0.0} MiB");
            return new ControlResponse
            {
                Ok = true, Stdout = [sent[^1]],
                Stderr = [$"group {name} ended here, written to the stream ({summary}); its checkpoints stay here: amber restore --group {name} brings it back here"],
                Report = ReportJson.Write(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("group", name);
                    w.WriteStrings("checkpoints", sent);
                    w.WriteNumber("bytes", bytes);
                    w.WriteNumber("frozenMs", response.Figure("frozenMs"));
                    w.WriteEndObject();
                }),
            };
        }
    }

    /// <summary>amber receive: a group read from fd <paramref name="fd"/> of the requester (root only), made here and restored if <paramref name="restore"/>.</summary>
    public ControlResponse Receive(int fd, bool restore, Requester who, Action<ProgressSample>? progress)
    {
        if (!who.IsRoot)
            return ControlResponse.Failure("amber receive takes a group from outside this host, its stream unauthenticated: only root may");
        if (OpenRequesterFd(who, fd, write: false, out string? problem) is not { } input)
            return ControlResponse.Failure($"cannot read the stream: {problem}");
        using (input)
        {
            GroupConfig settings;
            try
            {
                settings = ReadSettings(input);
            }
            catch (Exception e) when (e is IOException or ImageFormatException)
            {
                return ControlResponse.Failure(e.Message);
            }
            var group = services.Receive(settings, null, out string? refusal);
            if (group is null)
                return ControlResponse.Failure($"group {settings.Name} cannot come here: {refusal}");
            var received = new List<string>();
            long bytes = 0;
            try
            {
                services.WhileBusy(group, () =>
                {
                    progress?.Invoke(new ProgressSample { Phase = "receiving" });
                    var reader = CheckpointStreamReader.Begin(input, group.Store.Directory, sign: true);
                    while (reader.Next() is { } checkpoint)
                        received.Add(checkpoint.Name);
                    bytes = reader.BytesRead;
                    if (received.Count == 0)
                        throw new ImageFormatException("the stream holds no checkpoint");
                    NodeServices.Arrived(group);
                    return 0;
                });
            }
            catch (Exception e) when (e is IOException or ImageFormatException or ImageStoreException)
            {
                services.Forget(group);
                return ControlResponse.Failure($"group {settings.Name} was not received: {e.Message}; nothing of it stays here");
            }
            string summary = string.Create(CultureInfo.InvariantCulture, $"{string.Join(", ", received)}, {bytes / 1048576.0:0.0} MiB");
            if (!restore)
                return new ControlResponse { Ok = true, Stdout = [received[^1]], Stderr = [$"group {settings.Name} received ({summary}): amber restore --group {settings.Name} brings it back"] };
            var restored = services.WhileBusy(group, () =>
                services.Restore(group, group.Store.Find(received[^1])!, handOver: () => null, progress: progress));
            if (!restored.Ok)
                return ControlResponse.Failure($"group {settings.Name} was received ({summary}), and its restore failed: {restored.Error}; its checkpoints stay here");
            restored.Stderr.Insert(0, $"group {settings.Name} received ({summary})");
            return restored;
        }
    }

    /// <summary>
    /// Fd <paramref name="fd"/> of the requesting process, opened again through /proc, if that process
    /// opened it for this direction (so that its rights, not this coordinator's, decide what it reaches);
    /// null, and <paramref name="problem"/> says why, if not.
    /// </summary>
    private static FileStream? OpenRequesterFd(Requester who, int fd, bool write, out string? problem)
    {
        problem = null;
        if (who.Pid <= 0 || fd < 0)
        {
            problem = "the requester's fd is not known";
            return null;
        }
        try
        {
            uint access = ProcFs.ReadFdInfo(who.Pid, fd).Flags & 3; // O_ACCMODE
            if (write ? access == 0 : access == 1) // O_RDONLY to write, O_WRONLY to read
            {
                problem = $"fd {fd} of the requester is not open for {(write ? "writing" : "reading")}";
                return null;
            }
            string path = $"/proc/{who.Pid}/fd/{fd}";
            return new FileStream(path, FileMode.Open, write ? FileAccess.Write : FileAccess.Read, FileShare.ReadWrite, bufferSize: 1 << 20);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or KernelCallException)
        {
            problem = e.Message;
            return null;
        }
    }

    private static void WriteSettings(Stream output, GroupConfig config)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(config, GroupJson.Default.GroupConfig);
        Span<byte> head = stackalloc byte[12];
        Magic.CopyTo(head);
        BinaryPrimitives.WriteInt32LittleEndian(head[8..], json.Length);
        output.Write(head);
        output.Write(json);
    }

    private static GroupConfig ReadSettings(Stream input)
    {
        Span<byte> head = stackalloc byte[12];
        try
        {
            input.ReadExactly(head);
        }
        catch (EndOfStreamException)
        {
            throw new ImageFormatException("the stream is empty or cut off before the group's settings");
        }
        if (!head[..8].SequenceEqual(Magic))
            throw new ImageFormatException("not a group's stream (it does not start with AMBRGRP1: amber migrate --to-file writes one)");
        int length = BinaryPrimitives.ReadInt32LittleEndian(head[8..]);
        if (length is <= 0 or > MaxSettingsBytes)
            throw new ImageFormatException($"the stream's group settings are {length} bytes: not a group's stream");
        byte[] json = new byte[length];
        try
        {
            input.ReadExactly(json);
            return JsonSerializer.Deserialize(json, GroupJson.Default.GroupConfig) ?? throw new ImageFormatException("the stream's group settings are empty");
        }
        catch (EndOfStreamException)
        {
            throw new ImageFormatException("the stream is cut off in the group's settings");
        }
        catch (JsonException e)
        {
            throw new ImageFormatException($"the stream's group settings are damaged: {e.Message}");
        }
    }

}
