// A program of an Amber group that wants to know about checkpoints: it registers with the
// coordinator, prepares before each checkpoint (here: it only says so, or takes --slow MS to do it),
// and hears when the checkpoint is taken and when the group comes back from one. Meanwhile it counts,
// keeping a running sum it checks every tick: a restore must bring both back exactly. With --throw,
// every callback throws once it has said so: the program must run on all the same. With --serve LOG,
// it also answers "hits N" on a TCP port of 127.0.0.1 (said as "listening PORT") and logs "hit N" to
// LOG: the listener and the log are resources, closed before each checkpoint and opened again after.
//   amber run --group demo -- dotnet Amber.Client.Sample.dll [--slow MS] [--throw] [--serve LOG]
using System.Globalization;
using System.Net;
using System.Text;
using Amber.Client;

int slow = args.Length >= 2 && args[0] == "--slow" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 0;
bool fail = args.Contains("--throw");
void Done(string callback, string id)
{
    if (fail)
        throw new InvalidOperationException($"{callback} of {id} failed on purpose");
}

using var amber = GroupClient.Register("sample");
amber.BeforeCheckpoint = notice =>
{
    Console.WriteLine($"before-checkpoint {notice.Id} remaining-ms={(long)notice.Remaining.TotalMilliseconds}");
    if (slow > 0)
        Thread.Sleep(slow); // longer than the deadline: the checkpoint must not wait for it
    Console.WriteLine($"prepared {notice.Id}");
    Done("BeforeCheckpoint", notice.Id);
};
amber.AfterCheckpoint = id =>
{
    Console.WriteLine($"after-checkpoint {id}");
    Done("AfterCheckpoint", id);
};
amber.AfterRestore = id =>
{
    Console.WriteLine($"after-restore {id}");
    Done("AfterRestore", id);
};
Console.WriteLine($"registered in group {amber.Group}");

if (Array.IndexOf(args, "--serve") is int serve and >= 0)
{
    var listener = amber.Add(new ReopenedListener(new IPEndPoint(IPAddress.Loopback, 0)));
    var log = amber.Add(new ReopenedFile(args[serve + 1], FileMode.Append, FileAccess.Write));
    long hits = 0;
    new Thread(() =>
    {
        while (true)
        {
            using var connection = listener.Accept();
            long n = ++hits;
            log.Write(Encoding.ASCII.GetBytes($"hit {n}\n"));
            log.Flush();
            connection.Send(Encoding.ASCII.GetBytes($"hits {n}\n"));
        }
    }) { IsBackground = true, Name = "serve" }.Start();
    Console.WriteLine($"listening {listener.LocalEndPoint.Port}");
}

long sum = 0;
for (long n = 1; ; n++)
{
    if (sum != (n - 1) * n / 2)
    {
        Console.WriteLine($"FAIL sum {sum} at tick {n}");
        return 1;
    }
    sum += n;
    Console.WriteLine($"tick {n}");
    Thread.Sleep(20);
}
