using System.Text.Json;
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
    public static WorkerReport Run(ChildReaper reaper, string logPath, params string[] arguments) => Run(reaper, logPath, [], arguments);

    /// <param name="inherits">Files of ours the worker gets at given fd numbers (a channel).</param>
    public static WorkerReport Run(ChildReaper reaper, string logPath, IReadOnlyList<(int Fd, int Source)> inherits, params string[] arguments)
    {
        string output = Path.Combine(Path.GetTempPath(), $"amber-worker-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        try
        {
            // Made here, root's and private, before the worker writes its report into it.
            new FileStream(output, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Security.StateFiles.Private }).Dispose();
            var (path, args) = SelfCommand.With(["internal", .. arguments]);
            int pid = Spawner.Spawn(new SpawnOptions(path, args)
            {
                Opens = [(0, "/dev/null", SpawnOptions.Read), (1, output, SpawnOptions.Overwrite), (2, logPath, SpawnOptions.Append)],
                Inherits = inherits,
            });
            Kernel.Ptrace.WaitStatus end;
            while (!reaper.TryGetEnd(pid, out end))
                Thread.Sleep(5);
            reaper.Forget(pid);
            string text = File.Exists(output) ? File.ReadAllText(output).Trim() : "";
            if (text.Length == 0)
                return new WorkerReport { Ok = false, Error = $"the worker ended with {end} and said nothing (see {logPath})" };
            return JsonSerializer.Deserialize(text, WorkerJson.Default.WorkerReport) ?? new WorkerReport { Error = "an empty worker report" };
        }
        finally
        {
            File.Delete(output);
        }
    }
}
