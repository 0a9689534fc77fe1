namespace Amber.Native;

/// <summary>The ioctls of pseudo-terminals (asm-generic/ioctls.h) and the termios bits a restore touches (asm-generic/termbits.h).</summary>
internal static partial class Interop
{
    internal const ulong TCGETS = 0x5401;
    internal const ulong TCSETS = 0x5402;
    internal const ulong TIOCSCTTY = 0x540E;
    internal const ulong TIOCGPGRP = 0x540F;
    internal const ulong TIOCSPGRP = 0x5410;
    internal const ulong TIOCGWINSZ = 0x5413;
    internal const ulong TIOCSWINSZ = 0x5414;
    internal const ulong TIOCPKT = 0x5420;
    internal const ulong TIOCGETD = 0x5424;
    internal const ulong TIOCGSID = 0x5429;
    internal const ulong TIOCGPTN = 0x80045430;   // _IOR('T', 0x30, unsigned int)
    internal const ulong TIOCSPTLCK = 0x40045431; // _IOW('T', 0x31, int)
    internal const ulong TIOCGPKT = 0x80045438;   // _IOR('T', 0x38, int)
    internal const ulong TIOCGPTLCK = 0x80045439; // _IOR('T', 0x39, int)
    internal const ulong TIOCGPTPEER = 0x5441;    // _IO('T', 0x41)
    internal const int N_TTY = 0;

    // c_iflag
    internal const uint PARMRK = 0x8;
    internal const uint INPCK = 0x10;
    internal const uint ISTRIP = 0x20;
    internal const uint INLCR = 0x40;
    internal const uint IGNCR = 0x80;
    internal const uint ICRNL = 0x100;
    internal const uint IUCLC = 0x200;

    // c_oflag
    internal const uint OPOST = 0x1;

    // c_lflag
    internal const uint ISIG = 0x1;
    internal const uint ICANON = 0x2;
    internal const uint ECHO = 0x8;
    internal const uint ECHONL = 0x40;
    internal const uint IEXTEN = 0x8000;
}
