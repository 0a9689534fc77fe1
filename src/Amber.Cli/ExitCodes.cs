namespace Amber.Cli;

/// <summary>The exit codes of docs/architecture.md §9.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;
}
