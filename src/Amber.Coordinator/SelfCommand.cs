namespace Amber.Coordinator;

/// <summary>How to run this amber again (the daemon, its workers, the exec helper): the native program, or the dotnet host and amber.dll.</summary>
public static class SelfCommand
{
    public static (string Path, IReadOnlyList<string> Arguments) With(params string[] arguments)
    {
        string path = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell where amber runs from");
        return Path.GetFileNameWithoutExtension(path) == "dotnet"
            ? (path, [Path.Combine(AppContext.BaseDirectory, "amber.dll"), .. arguments])
            : (path, arguments);
    }
}
