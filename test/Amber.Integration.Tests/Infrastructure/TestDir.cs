namespace Amber.Integration.Tests.Infrastructure;

/// <summary>A fresh directory per test, removed afterwards (kept when AMBER_KEEP_TEST_DIRS=1).</summary>
public sealed class TestDir : IDisposable
{
    public TestDir(string name)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"amber-it-{name}-{Guid.NewGuid():N}"[..Math.Min(48, 10 + name.Length + 12)]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string this[string name] => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (Environment.GetEnvironmentVariable("AMBER_KEEP_TEST_DIRS") == "1")
            return;
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}
