namespace Amber.Integration.Tests;

/// <summary>A file deleted while open comes back with its contents, offset and flags, and still without a name.</summary>
public sealed class DeletedFileTests
{
    private const string Script = """
        import os, sys, time
        work = sys.argv[1]
        path = os.path.join(work, "scratch.bin")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        block = bytes(range(256)) * 64          # 16 KiB
        for i in range(64):                     # 1 MiB with a hole after the first half
            if i < 32 or i >= 48:
                os.pwrite(fd, block, i * len(block))
        os.unlink(path)
        os.lseek(fd, 12345, os.SEEK_SET)
        print("READY", flush=True)
        n = 0
        while True:
            n += 1
            if os.path.exists(os.path.join(work, "stop")):
                st = os.fstat(fd)
                ok = st.st_size == 64 * len(block) and st.st_nlink == 0 and os.lseek(fd, 0, os.SEEK_CUR) == 12345 + n - 1
                for i in range(64):
                    want = block if (i < 32 or i >= 48) else bytes(len(block))
                    if i == 0:
                        want = bytes([n - 1 & 0xff]) + block[1:]
                    ok = ok and os.pread(fd, len(block), i * len(block)) == want
                print("PASS" if ok else "FAIL deleted file contents, size, link count or offset", n, flush=True)
                sys.exit(0 if ok else 1)
            os.pwrite(fd, bytes([n & 0xff]), 0)    # change it as we go
            os.lseek(fd, 1, os.SEEK_CUR)
            print(f"tick {n}", flush=True)
            time.sleep(0.02)
        """;

    [Fact]
    public void DeletedOpenFileSurvivesTwoCycles()
    {
        using var dir = new TestDir("deleted");
        File.WriteAllText(dir["deleted.py"], Script);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["deleted.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(3);
            Assert.Empty(Directory.GetFiles(dir.Path, ".amber-restore-*"));
            Assert.Contains(Directory.GetFiles($"/proc/{target.Pid}/fd").Select(f => new FileInfo(f).LinkTarget), l => l == dir["scratch.bin"] + " (deleted)");
        }
        target.StopAndVerify();
    }
}
