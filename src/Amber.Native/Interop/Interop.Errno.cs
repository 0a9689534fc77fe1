namespace Amber.Native;

internal static partial class Interop
{
    // errno values the image store tells apart (Amber.Kernel keeps its own list in Errnos).
    internal const int EPERM = 1;
    internal const int ENOENT = 2;
    internal const int EEXIST = 17;
    internal const int EXDEV = 18;
    internal const int EMLINK = 31;
    internal const int ENOTEMPTY = 39;
    internal const int ELOOP = 40;
    internal const int EOPNOTSUPP = 95;
}
