using System.Text.Json;
using Amber.Coordinator.Control;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;

namespace Amber.Coordinator.Workers;

/// <summary>
/// A checkpoint or restore runs in a worker: a separate amber process (amber internal ...) that
/// reports on its standard output. The coordinator only waits for it, so if the coordinator is
/// killed mid-checkpoint the worker still finishes, thaws and resumes the group, and nothing stays
/// frozen or traced.
/// </summary>
public static class Worker
{
    /// <param name="reaper">The coordinator's reaper, which tells when the worker ends.</param>
    /// <param name="logPath">Where the worker's standard error goes (the coordinator's log).</param>
    /// <param name="arguments">What follows <c>amber internal</c>.</param>
    /// <param name="inherits">Files of ours the worker gets at given fd numbers (a channel).</param>
    /// <param name="progress">Told how far the worker has come, a few times a second, while it works (<see cref="WorkerProgress"/>).</param>
    public static WorkerReport Run(ChildReaper reaper, string logPath, IReadOnlyList<string> arguments,
        IReadOnlyList<(int Fd, int Source)>? inherits = null, Action<ProgressSample>? progress = null)
    {
        string output = Path.Combine(Path.GetTempPath(), $"amber-worker-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        HeldFile? notes = null, notesWrite = null;
        Thread? listener = null;
        try
        {
            // Made here, root's and private, before the worker writes its report into it.
            new FileStream(output, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Security.StateFiles.Private }).Dispose();
            var (path, args) = SelfCommand.With(["internal", .. arguments]);
            var options = new SpawnOptions(path, args)
            {
                Opens = [(0, "/dev/null", SpawnOptions.Read), (1, output, SpawnOptions.Overwrite), (2, logPath, SpawnOptions.Append)],
                Inherits = inherits ?? [],
            };
            if (progress is not null)
            {
                (notes, notesWrite) = NotePipe.Create();
                options = options with
                {
                    Inherits = [.. options.Inherits, (WorkerProgress.Fd, notesWrite.Fd)],
                    Environment = Spawner.CurrentEnvironment((WorkerProgress.FdVariable, WorkerProgress.Fd.ToString(System.Globalization.CultureInfo.InvariantCulture))),
                };
                var from = notes;
                listener = new Thread(() => Listen(from, progress)) { IsBackground = true, Name = "amberd-progress" };
            }
            int pid = Spawner.Spawn(options);
            // Ours closed, the worker's end is the only one: the listener sees the end when the worker ends.
            notesWrite?.Dispose();
            listener?.Start();
            // Collected here too, not only by the monitor's next tick (100 ms): a migration's downtime waits on this.
            Kernel.Ptrace.WaitStatus end;
            while (!reaper.TryGetEnd(pid, out end))
            {
                reaper.Collect();
                if (!reaper.TryGetEnd(pid, out end))
                    Thread.Sleep(2);
            }
            reaper.Forget(pid);
            string text = File.Exists(output) ? File.ReadAllText(output).Trim() : "";
            if (text.Length == 0)
                return new WorkerReport { Ok = false, Error = $"the worker ended with {end} and said nothing (see {logPath})" };
            return JsonSerializer.Deserialize(text, WorkerJson.Default.WorkerReport) ?? new WorkerReport { Error = "an empty worker report" };
        }
        finally
        {
            notesWrite?.Dispose();
            listener?.Join();
            notes?.Dispose();
            File.Delete(output);
        }
    }

    /// <summary>Hands on every sample the worker sends until it ends; a line that is not one is skipped.</summary>
    private static void Listen(HeldFile notes, Action<ProgressSample> progress)
    {
        try
        {
            NotePipe.ReadAll(notes, line =>
            {
                ProgressSample? sample = null;
                try
                {
                    sample = JsonSerializer.Deserialize(line, ControlJson.Default.ProgressSample);
                }
                catch (JsonException)
                {
                }
                if (sample is not null)
                    progress(sample);
            });
        }
        catch (KernelCallException)
        {
            // Progress is for show: a pipe that fails ends it, never the operation.
        }
    }
}
