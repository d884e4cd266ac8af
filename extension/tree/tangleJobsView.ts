// Tangle Jobs: jobs submitted to the Tangle network and their status. Empty until the Tangle issue lands;
// the view's welcome content (package.json viewsWelcome) offers to configure Tangle.
import * as vscode from 'vscode';

export class TangleJobsView implements vscode.TreeDataProvider<never> {
  getTreeItem(): vscode.TreeItem {
    throw new Error('no Tangle jobs yet');
  }

  getChildren(): never[] {
    return [];
  }
}
