namespace Amber.Cli;

/// <summary>The command line is wrong in a way the parser could not tell (exit code 2).</summary>
public sealed class UsageException(string message) : Exception(message);
