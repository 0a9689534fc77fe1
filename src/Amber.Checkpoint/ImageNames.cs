namespace Amber.Checkpoint;

/// <summary>File names inside a checkpoint directory.</summary>
public static class ImageNames
{
    public static string Process(int pid) => $"process-{pid}.img";

    public static string Pages(int pid) => $"pages-{pid}.img";

    public static readonly string AmberVersion =
        typeof(ImageNames).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
