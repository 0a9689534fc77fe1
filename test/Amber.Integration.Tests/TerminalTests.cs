using System.Text.RegularExpressions;

namespace Amber.Integration.Tests;

/// <summary>Pseudo-terminals the checkpointed processes made themselves: the pair, its settings, its session and the bytes in it.</summary>
public partial class TerminalTests
{
    [Fact]
    public void APseudoTerminalOfItsOwnComesBackWithItsSessionSettingsAndQueuedBytes()
    {
        using var dir = new TestDir("pty");
        using var target = TargetProcess.StartC("pty", dir);
        target.WaitForTicks(5);
        for (int cycle = 1; cycle <= 3; cycle++)
        {
            // The second time bytes surely wait both ways: P stops reading G's acks while G answers a
            // few more lines, then G stops reading while P types a few more.
            bool held = cycle == 2;
            if (held)
            {
                File.WriteAllText(dir["hold"], "");
                target.WaitForTicks(5);
                File.WriteAllText(dir["hold2"], "");
                target.WaitForTicks(5);
            }
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            var pty = PtyLine().Match(AmberCli.Run("inspect", dir[$"img{cycle}"]).ShouldSucceed().Stdout);
            Assert.True(pty.Success, "amber inspect shows no pseudo-terminal the process makes");
            Assert.Equal("41x132", pty.Groups["size"].Value);
            if (held)
            {
                Assert.True(int.Parse(pty.Groups["master"].Value) > 0, $"nothing waited for the master: {pty.Value}");
                Assert.True(int.Parse(pty.Groups["slave"].Value) > 0, $"nothing waited for the slave: {pty.Value}");
                File.Delete(dir["hold2"]);
                File.Delete(dir["hold"]);
            }
            target.WaitForTicks(10); // each tick checks the terminal, every seq and ack
        }
        target.StopAndVerify();
    }

    /// <summary>
    /// util-linux's script(1) runs a Python program in a terminal of its own, in a session whose
    /// controlling terminal it is (the shell's, or its own if the shell execs it): the program checks
    /// its terminal every tick and prints through /dev/tty (held open), script copying what it prints to the log.
    /// </summary>
    [Fact]
    public void ScriptsTerminalAndTheProgramInItComeBack()
    {
        using var dir = new TestDir("script");
        File.WriteAllText(dir["tty.py"], """
            import fcntl, os, struct, sys, termios, time
            def fail(what):
                print('FAIL ' + what, flush=True)
                sys.exit(1)
            name, session, foreground = os.ttyname(0), os.getsid(0), os.tcgetpgrp(0)
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 33, 99, 0, 0))
            t = termios.tcgetattr(0)
            t[3] &= ~termios.ECHO
            termios.tcsetattr(0, termios.TCSANOW, t)
            held = open('/dev/tty', 'w', buffering=1)
            n = 0
            while not os.path.exists(sys.argv[1] + '/stop'):
                n += 1
                if os.ttyname(0) != name or os.ttyname(1) != name: fail('ttyname %s, expected %s' % (os.ttyname(0), name))
                if os.getsid(0) != session or os.tcgetpgrp(0) != foreground: fail('session %d, foreground group %d' % (os.getsid(0), os.tcgetpgrp(0)))
                if struct.unpack('HHHH', fcntl.ioctl(0, termios.TIOCGWINSZ, b'\0' * 8))[:2] != (33, 99): fail('window size')
                lflag = termios.tcgetattr(0)[3]
                if lflag & termios.ECHO or not lflag & termios.ICANON: fail('lflag %o' % lflag)
                with open('/dev/tty', 'w') as tty:
                    if not os.isatty(tty.fileno()): fail('/dev/tty is no terminal')
                held.write('tick %d\n' % n)
                time.sleep(0.02)
            print('PASS %d' % n, flush=True)
            """);
        using var target = TargetProcess.Start("/usr/bin/script", ["-qfec", $"python3 {dir["tty.py"]} {dir.Path}", "/dev/null"], dir.Path);
        target.WaitForTicks(5);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            Assert.Matches(@"makes pseudo-terminal /dev/pts/\d+ \(/dev/ptmx\): 33x99, canonical, controls session \d+",
                AmberCli.Run("inspect", dir[$"img{cycle}"]).ShouldSucceed().Stdout);
            target.WaitForTicks(5);
        }
        target.StopAndVerify();
    }

    /// <summary>
    /// One process holds both sides of a raw terminal with bytes waiting each way, control and
    /// high bytes among them: after the restore each side reads exactly them, and nothing else
    /// (no echo, no translation, no signal).
    /// </summary>
    [Fact]
    public void BytesWaitingInARawTerminalComeBackExactly()
    {
        using var dir = new TestDir("ptyraw");
        File.WriteAllText(dir["raw.py"], """
            import os, pty, select, sys, time, tty
            m, s = pty.openpty()
            tty.setraw(s)
            to_slave, to_master = b'typed\r\n\x03\x1a\x7f\xff\x00 \x11\x13!', b'shown\n\r\x00\xfe\x1b[0m'
            os.write(m, to_slave)
            os.write(s, to_master)
            print('READY', flush=True)
            n = 0
            while not os.path.exists(sys.argv[1] + '/stop'):
                n += 1
                print('tick %d' % n, flush=True)
                time.sleep(0.02)
            def take(fd):
                got = b''
                while select.select([fd], [], [], 0.2)[0]:
                    got += os.read(fd, 4096)
                return got
            got_slave, got_master = take(s), take(m)
            if got_slave != to_slave: print('FAIL the slave read %r, expected %r' % (got_slave, to_slave), flush=True); sys.exit(1)
            if got_master != to_master: print('FAIL the master read %r, expected %r' % (got_master, to_master), flush=True); sys.exit(1)
            print('PASS %d' % n, flush=True)
            """);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["raw.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(60));
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            Assert.Matches(@"non-canonical; 13 B for the master, 16 B for the slave", AmberCli.Run("inspect", dir[$"img{cycle}"]).ShouldSucceed().Stdout);
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
    }

    /// <summary>
    /// A line typed into a canonical-mode terminal and not read yet cannot be read out and put back
    /// exactly (a line still being typed would end up before it): the checkpoint is refused, and the
    /// process finds its line there, once, and no echo of it again.
    /// </summary>
    [Fact]
    public void UnreadTypedLinesInACanonicalTerminalAreRefusedAndLeftAsTheyWere()
    {
        using var dir = new TestDir("ptycanon");
        File.WriteAllText(dir["canon.py"], """
            import os, pty, select, sys, time
            m, s = pty.openpty()
            os.write(m, b'typed\n')
            time.sleep(0.1)
            echo = os.read(m, 100)
            print('READY', flush=True)
            while not os.path.exists(sys.argv[1] + '/stop'):
                time.sleep(0.02)
            line = os.read(s, 100)
            more = select.select([m, s], [], [], 0.2)[0]
            if line != b'typed\n' or more or echo != b'typed\r\n': print('FAIL read %r, then %r ready; echo %r' % (line, more, echo), flush=True); sys.exit(1)
            print('PASS 1', flush=True)
            """);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["canon.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(60));
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail("canonical mode with 6 bytes of typed lines its reader has not read yet");
        Assert.False(Directory.Exists(dir["img"]) && Directory.EnumerateFileSystemEntries(dir["img"]).Any(), "a refused checkpoint left an image");
        Assert.True(target.IsRunning && !target.IsTraced, "a refused checkpoint must leave the process running untraced");
        target.StopAndVerify();
    }

    [GeneratedRegex(@"makes pseudo-terminal /dev/pts/\d+ \(/dev/ptmx\): (?<size>\d+x\d+), non-canonical, controls session \d+ \(foreground group \d+\); (?<master>\d+) B for the master, (?<slave>\d+) B for the slave")]
    private static partial Regex PtyLine();
}
