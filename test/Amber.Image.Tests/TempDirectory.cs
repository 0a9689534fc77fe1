namespace Amber.Image.Tests;

/// <summary>A fresh directory under the system temp path, deleted with everything in it on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("amber-image-tests-").FullName;
    }

    public string Path { get; }

    /// <summary>A path inside this directory that does not exist yet.</summary>
    public string Child(string name) => System.IO.Path.Join(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
